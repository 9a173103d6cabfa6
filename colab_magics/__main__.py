"""``python -m colab_magics demo``: training killed mid-way and resumed, against the emulator."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from colab_magics.demo.runner import DEFAULT_NOTEBOOK

    parser = argparse.ArgumentParser(prog="python -m colab_magics")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run demo.ipynb in a real kernel, SIGKILL it mid-training, resume in a fresh one",
    )
    demo.add_argument("--notebook", default=str(DEFAULT_NOTEBOOK), help="the notebook to run")
    demo.add_argument(
        "--out",
        default="demo.executed.ipynb",
        help="where the executed notebook (the resumed runtime's outputs) is written",
    )
    demo.add_argument(
        "--kill-at",
        type=float,
        default=0.6,
        help="kill runtime 1 once training has printed this fraction of its steps (0.6)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.kill_at < 1:
        parser.error("--kill-at takes a fraction between 0 and 1")
    try:
        import jupyter_client  # noqa: F401
    except ImportError:
        print("The demo runs real kernels: pip install jupyter_client ipykernel", file=sys.stderr)
        return 2
    from colab_magics.demo.runner import run_demo

    return run_demo(args.notebook, args.out, kill_fraction=args.kill_at)


if __name__ == "__main__":
    sys.exit(main())
