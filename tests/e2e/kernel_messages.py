"""Every IOPub message a real kernel sends, kept per cell and in arrival order.

``DemoKernel.run`` keeps only a cell's own messages; the tests here also need what a
background thread sends after its cell ended (to see under which cell it lands) and the
widgets' states, to read a panel as the browser would.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable
from typing import Any

from colab_magics.demo.kernel import DemoKernel
from colab_magics.demo.outputs import WIDGET_TARGET

VIEW = "application/vnd.jupyter.widget-view+json"


@dataclasses.dataclass
class Cell:
    msg_id: str
    messages: list[dict[str, Any]]

    def of_type(self, *kinds: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in kinds]

    @property
    def error(self) -> dict[str, Any] | None:
        errors = self.of_type("error")
        return errors[0]["content"] if errors else None

    def text(self, name: str = "stdout") -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream")
                       if m["content"]["name"] == name)  # fmt: skip

    def widgets_opened(self) -> list[str]:
        """Comm ids of the ``jupyter.widget`` comms this cell opened."""
        return [m["content"]["comm_id"] for m in self.of_type("comm_open")
                if m["content"].get("target_name") == WIDGET_TARGET]  # fmt: skip

    def widgets_displayed(self) -> list[str]:
        """Model ids of the widgets displayed as this cell's output."""
        return [m["content"]["data"][VIEW]["model_id"] for m in self.of_type("display_data")
                if VIEW in m["content"].get("data", {})]  # fmt: skip


class KernelSession:
    """Runs cells on ``kernel`` and keeps every message; ``state`` holds each widget's state."""

    def __init__(self, kernel: DemoKernel) -> None:
        self.kernel = kernel
        self.log: list[tuple[float, dict[str, Any]]] = []
        self.state: dict[str, dict[str, Any]] = {}

    def run(
        self, code: str, timeout: float = 120, on_stream: Callable[[str], None] | None = None
    ) -> Cell:
        """Run a cell until the kernel is idle again; ``on_stream`` sees its stream text."""
        msg_id = self.kernel.client.execute(code, allow_stdin=False)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._next(deadline)
            if msg is None:
                continue
            parent = msg["parent_header"].get("msg_id")
            if parent == msg_id and msg["msg_type"] == "stream" and on_stream is not None:
                on_stream(msg["content"]["text"])
            if (parent == msg_id and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"):  # fmt: skip
                return Cell(msg_id, self.cell_messages(msg_id))

    def drain(self, seconds: float) -> None:
        """Keep receiving for ``seconds`` (what background threads send meanwhile)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._next(deadline, quiet=True)

    def cell_messages(self, msg_id: str) -> list[dict[str, Any]]:
        return [m for _, m in self.log if m["parent_header"].get("msg_id") == msg_id]

    def _next(self, deadline: float, quiet: bool = False) -> dict[str, Any] | None:
        try:
            msg = self.kernel.client.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            if not quiet and time.monotonic() > deadline:
                raise TimeoutError("the cell did not finish in time") from None
            if not self.kernel.manager.is_alive():
                raise RuntimeError("the kernel died") from None
            return None
        self.log.append((time.monotonic(), msg))
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content.get("target_name") == WIDGET_TARGET:
            self.state[content["comm_id"]] = dict(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_msg" and content.get("comm_id") in self.state:
            data = content.get("data", {})
            if data.get("method") == "update":
                self.state[content["comm_id"]].update(data.get("state", {}))
        return msg

    def panel(self, model_id: str, state: dict[str, dict[str, Any]] | None = None) -> dict:
        """A panel's words (every HTML value under it, joined) and its bar's style."""
        state = self.state if state is None else state
        texts: list[str] = []
        styles: list[str] = []

        def walk(mid: str) -> None:
            values = state.get(mid, {})
            if values.get("_model_name") == "HTMLModel":
                texts.append(values.get("value", ""))
            if values.get("_model_name") == "FloatProgressModel":
                styles.append(values.get("bar_style", ""))
            for child in values.get("children", []):
                walk(child.removeprefix("IPY_MODEL_"))

        walk(model_id)
        return {"text": " | ".join(texts), "bar_style": styles[0] if styles else None}

    def panel_history(self, model_id: str) -> list[tuple[float, dict[str, Any]]]:
        """The panel as drawn after each widget message, with the time that message came."""
        state: dict[str, dict[str, Any]] = {}
        history = []
        for at, msg in self.log:
            content = msg["content"]
            if msg["msg_type"] == "comm_open" and content.get("target_name") == WIDGET_TARGET:
                state[content["comm_id"]] = dict(content["data"].get("state", {}))
            elif msg["msg_type"] == "comm_msg" and content.get("comm_id") in state:
                if content.get("data", {}).get("method") == "update":
                    state[content["comm_id"]].update(content["data"].get("state", {}))
            else:
                continue
            if model_id in state:
                history.append((at, self.panel(model_id, state)))
        return history

    def idle_at(self, cell: Cell) -> float:
        """When the cell's kernel went idle."""
        return next(at for at, m in self.log if m["parent_header"].get("msg_id") == cell.msg_id
                    and m["msg_type"] == "status"
                    and m["content"]["execution_state"] == "idle")  # fmt: skip
