"""A kernel whose shell is a subclass of ipykernel's ``ZMQInteractiveShell``, as Colab's is.

Colab starts an ``IPythonKernel`` subclass whose ``shell_class`` is ``google.colab._shell.Shell``
(a ``ZMQInteractiveShell`` subclass, registered with ``InteractiveShellABC``). Of what that
shell does differently, this models what reaches the extension: ``run_cell_magic`` runs a cell
magic whose body is empty with the body ``' '`` (``%%mymagic --help`` must run), where IPython
refuses an empty body. Works with ipykernel 5.5 (Colab's) and 6+.

``write_kernelspec(folder)`` makes a kernelspec for it; run ``python colab_kernel.py -f FILE``
to start one by hand.
"""

from __future__ import annotations

import json
import os
import sys

from ipykernel.ipkernel import IPythonKernel
from ipykernel.zmqshell import ZMQInteractiveShell
from IPython.core.interactiveshell import InteractiveShellABC
from traitlets import Type

KERNEL_NAME = "colab-like"


class ColabLikeShell(ZMQInteractiveShell):
    """``ZMQInteractiveShell`` with Colab's ``run_cell_magic``."""

    def run_cell_magic(self, magic_name, line, cell):
        # As google/colab/_shell.py: a cell magic with a line and no body still runs.
        if line and not cell:
            cell = " "
        return super().run_cell_magic(magic_name, line, cell)


InteractiveShellABC.register(ColabLikeShell)


class ColabLikeKernel(IPythonKernel):
    shell_class = Type(ColabLikeShell)
    implementation = "colab-like"


def write_kernelspec(folder: str | os.PathLike[str]) -> str:
    """A kernelspec for this kernel under ``folder/kernels``; returns the kernel's name.

    Point ``$JUPYTER_PATH`` at ``folder`` for jupyter_client to find it.
    """
    spec_dir = os.path.join(os.fspath(folder), "kernels", KERNEL_NAME)
    os.makedirs(spec_dir, exist_ok=True)
    spec = {
        "argv": [sys.executable, os.path.abspath(__file__), "-f", "{connection_file}"],
        "display_name": "Python 3 (Colab-like shell)",
        "language": "python",
    }
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump(spec, f)
    return KERNEL_NAME


if __name__ == "__main__":
    from ipykernel.kernelapp import IPKernelApp

    # Run as a script, this file's folder is first on sys.path: keep its modules out of it.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
    IPKernelApp.launch_instance(kernel_class=ColabLikeKernel)
