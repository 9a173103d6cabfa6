"""The one-command demo: demo.ipynb in real kernels, killed mid-training and resumed."""

from colab_magics.demo.runner import run_demo

__all__ = ["run_demo"]
