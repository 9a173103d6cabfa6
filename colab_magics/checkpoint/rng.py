"""Random number generator states, as JSON, so a resumed run draws what an unbroken one would.

Covers Python's ``random``, NumPy's global generator and torch's CPU and CUDA generators. NumPy
and torch are only touched when the user has imported them: they are not our dependencies.
"""

from __future__ import annotations

import base64
import contextlib
import random
import sys
from collections.abc import Iterator
from typing import Any


def capture_rng() -> dict[str, Any]:
    """The state of every global generator in use, as plain JSON values."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss}
    }
    np = sys.modules.get("numpy")
    if np is not None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = {
            "kind": kind,
            "keys": keys.tolist(),  # Python ints, in one C call
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch_cpu"] = _b64(torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["torch_cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` saw; generators it did not record are left alone."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "numpy" in state:
        import numpy as np

        np.random.set_state(_numpy_state(np, state["numpy"]))
    if "torch_cpu" in state:
        import torch

        torch.set_rng_state(_unb64(torch, state["torch_cpu"]))
        if "torch_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([_unb64(torch, s) for s in _cuda_states(torch, state)])


@contextlib.contextmanager
def untouched() -> Iterator[None]:
    """Run a block without it moving any global generator: what it draws is put back after.

    For our own calls into a data loader (its state, rebuilding its iterator on resume), so
    that they draw nothing an uninterrupted run would not have drawn at that point.
    """
    saved = capture_rng()
    try:
        yield
    finally:
        restore_rng(saved)


def check_rng(state: dict[str, Any]) -> None:
    """Raise ``ValueError`` (or ``KeyError``/``TypeError``) unless :func:`restore_rng` can put
    ``state`` back: each part is tried on a throwaway generator, so nothing live changes."""
    if not isinstance(state, dict) or "python" not in state:
        raise ValueError("no state for Python's random")
    py = state["python"]
    if not isinstance(py["state"], list):
        raise TypeError("Python's random state is not a list")
    random.Random().setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "numpy" in state:
        import numpy as np

        np.random.RandomState().set_state(_numpy_state(np, state["numpy"]))
    if "torch_cpu" in state:
        import torch

        check_torch_state(state["torch_cpu"])
        if "torch_cuda" in state and torch.cuda.is_available():
            if not isinstance(state["torch_cuda"], list):
                raise TypeError("the CUDA generator states are not a list")
            for device, text in enumerate(_cuda_states(torch, state)):
                if _unb64(torch, text).numel() != torch.cuda.get_rng_state(device).numel():
                    raise ValueError(f"the CUDA generator state of device {device} is not one")


def check_torch_state(text: Any) -> None:
    """Raise unless ``text`` is a torch CPU generator's state, tried on a throwaway one."""
    import torch

    torch.Generator().set_state(_unb64(torch, text))


def _numpy_state(np: Any, saved: dict[str, Any]) -> tuple:
    """NumPy's ``set_state`` tuple from what :func:`capture_rng` saved."""
    keys = np.array(saved["keys"], dtype=np.uint32)
    return (saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"])


def _cuda_states(torch: Any, state: dict[str, Any]) -> list[str]:
    """The saved CUDA generator states of the devices this runtime has (a run saved on more
    GPUs resumes on fewer: the others' generators are not there to restore)."""
    return state["torch_cuda"][: torch.cuda.device_count()]


def _b64(tensor: Any) -> str:
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")


def _unb64(torch: Any, text: str) -> Any:
    if not isinstance(text, str):
        raise TypeError("a generator state is not base64 text")
    return torch.frombuffer(bytearray(base64.b64decode(text, validate=True)), dtype=torch.uint8)
