"""The Colab-like kernel the end-to-end tests of the notebook surface run on."""

from __future__ import annotations

import pytest

from colab_magics.demo.kernel import DemoKernel
from tests.e2e.colab_kernel import write_kernelspec
from tests.e2e.kernel_messages import KernelSession
from tests.e2e.runtimes import new_runtime, runtime_env


@pytest.fixture
def colab(emulator, tmp_path, monkeypatch):
    """A session on a Colab-like kernel whose Drive is ``emulator``, extension loaded."""
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    name = write_kernelspec(tmp_path / "jupyter")
    cwd = new_runtime(tmp_path, "colab")
    kernel = DemoKernel(cwd, runtime_env(emulator, cwd), kernel_name=name)
    try:
        session = KernelSession(kernel)
        setup = session.run(
            "%load_ext colab_magics\n"
            "import numpy as np, ipykernel.zmqshell as z\n"
            "w = np.zeros(3)\n"
            "print(type(get_ipython()).__name__, isinstance(get_ipython(), z.ZMQInteractiveShell))"
        )
        assert setup.error is None, setup.error
        assert setup.text().split() == ["ColabLikeShell", "True"]
        yield session
    finally:
        kernel.close()
