"""Turning a cell's IOPub messages into nbformat outputs (and the widgets' last state)."""

from __future__ import annotations

from typing import Any

WIDGET_TARGET = "jupyter.widget"


class CellOutputs:
    """What one cell displayed, assembled the way a notebook front end would keep it."""

    def __init__(self, widgets: WidgetStates) -> None:
        self.outputs: list[dict[str, Any]] = []
        self.execution_count: int | None = None
        self.error: str | None = None
        self._widgets = widgets
        self._clear_pending = False
        self._display_ids: dict[str, list[int]] = {}

    def add(self, msg: dict[str, Any]) -> str | None:
        """Take one IOPub message of this cell; returns stream text, if it was a stream."""
        kind, content = msg["msg_type"], msg["content"]
        if kind == "execute_input":
            self.execution_count = content.get("execution_count")
        elif kind == "stream":
            self._append_stream(content["name"], content["text"])
            return content["text"]
        elif kind in ("display_data", "execute_result"):
            self._append_data(kind, content)
        elif kind == "update_display_data":
            self._update_display(content)
        elif kind == "error":
            self.error = f"{content['ename']}: {content['evalue']}"
            self._append({"output_type": "error", **_pick(content, "ename", "evalue", "traceback")})
        elif kind == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self._clear()
        elif kind in ("comm_open", "comm_msg"):
            self._widgets.add(kind, content)
        return None

    def _append(self, output: dict[str, Any]) -> None:
        if self._clear_pending:
            self._clear()
        self.outputs.append(output)

    def _clear(self) -> None:
        self.outputs.clear()
        self._display_ids.clear()
        self._clear_pending = False

    def _append_stream(self, name: str, text: str) -> None:
        last = self.outputs[-1] if self.outputs and not self._clear_pending else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self._append({"output_type": "stream", "name": name, "text": text})

    def _append_data(self, kind: str, content: dict[str, Any]) -> None:
        output = {"output_type": kind, **_pick(content, "data", "metadata")}
        if kind == "execute_result":
            output["execution_count"] = content.get("execution_count", self.execution_count)
        self._append(output)
        display_id = content.get("transient", {}).get("display_id")
        if display_id:
            self._display_ids.setdefault(display_id, []).append(len(self.outputs) - 1)

    def _update_display(self, content: dict[str, Any]) -> None:
        display_id = content.get("transient", {}).get("display_id")
        for index in self._display_ids.get(display_id, []):
            self.outputs[index].update(_pick(content, "data", "metadata"))


class WidgetStates:
    """The last state of every widget model the kernel opened, for the notebook's metadata."""

    def __init__(self) -> None:
        self._models: dict[str, dict[str, Any]] = {}

    def add(self, kind: str, content: dict[str, Any]) -> None:
        data = content.get("data", {})
        if kind == "comm_open":
            if content.get("target_name") == WIDGET_TARGET:
                self._models[content["comm_id"]] = dict(data.get("state", {}))
        elif content.get("comm_id") in self._models and data.get("method") == "update":
            self._models[content["comm_id"]].update(data.get("state", {}))

    def metadata(self) -> dict[str, Any] | None:
        """The ``application/vnd.jupyter.widget-state+json`` value, or None without widgets."""
        if not self._models:
            return None
        state = {
            model_id: {
                "model_name": values.get("_model_name"),
                "model_module": values.get("_model_module"),
                "model_module_version": values.get("_model_module_version"),
                "state": values,
            }
            for model_id, values in self._models.items()
        }
        return {"state": state, "version_major": 2, "version_minor": 0}


def _pick(content: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: content[key] for key in keys if key in content}
