"""The IPython surface: parse a magic's arguments, call one public function, render.

No logic lives here that a plain Python user could not reach through ``colab_magics.*``.
"""

from __future__ import annotations

import ast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from colab_magics import ui
from colab_magics.checkpoint.api import checkpointed, parse_names
from colab_magics.checkpoint.session import CheckpointUsageError
from colab_magics.connection import use_client
from colab_magics.drive import DriveError, connect
from colab_magics.progress import Progress


def _parse(magic, line: str):
    """``parse_argstring`` with every mistake as a one-line UsageError."""
    try:
        return parse_argstring(magic, line)
    except UsageError:
        raise
    except (SystemExit, ValueError) as exc:  # argparse exits; shlex raises ValueError
        raise UsageError(f"{magic.__name__}: {exc}") from None


def count_range_loops(cell: str, name: str) -> int:
    """How many ``NAME.range(...)`` calls the cell's source makes (0 if it does not parse)."""
    try:
        tree = ast.parse(cell)
    except SyntaxError:
        return 0
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "range"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == name
    )


@magics_class
class CheckpointMagics(Magics):
    @magic_arguments()
    @argument("name", help="names the run; checkpoints go to colab_magics/checkpoints/NAME")
    @argument("--save", default="", help="variables to capture, comma-separated: model,opt")
    @argument("--every", default="10m", help="cadence: a duration (90s, 10m, 1h) or a step count")
    @argument("--keep", type=int, default=3, help="confirmed checkpoints kept on Drive")
    @argument(
        "--dir",
        dest="directory",
        default=None,
        help="a folder the trainer writes its own checkpoints into: restored before the cell, "
        "pushed while it runs, confirmed at the end",
    )
    @argument("--to", default=None, help="Drive folder instead of colab_magics/checkpoints/NAME")
    @argument("--lifetime", default="12h", help="how long a runtime lives (default 12h)")
    @argument("--margin", default="10m", help="stop this long before the runtime's end")
    @argument("--as", dest="as_name", default="ckpt", help="the name the cell uses (ckpt)")
    @argument("--fresh", action="store_true", help="ignore existing checkpoints, start at step 0")
    @cell_magic
    def checkpointed(self, line: str, cell: str) -> None:
        """Run a training cell that resumes from the newest checkpoint Drive has confirmed.

        In the cell, loop with ``for step in ckpt.range(N):``; state named by ``--save`` is
        captured at step boundaries on the ``--every`` cadence and uploaded in the background.
        """
        args = _parse(self.checkpointed, line)
        if not args.as_name.isidentifier():
            raise UsageError(f"--as {args.as_name!r} is not a variable name")
        if count_range_loops(cell, args.as_name) > 1:
            raise UsageError(
                f"the cell has more than one {args.as_name}.range() loop: "
                "use one per checkpointed cell"
            )
        progress = Progress(f"checkpointed {args.name}")
        display = ui.show(progress)
        try:
            with checkpointed(
                args.name,
                save=parse_names(args.save),
                namespace=self.shell.user_ns,
                every=args.every,
                keep=args.keep,
                to=args.to,
                lifetime=args.lifetime,
                margin=args.margin,
                fresh=args.fresh,
                directory=args.directory,
                progress=progress,
            ) as ckpt:
                self.shell.user_ns[args.as_name] = ckpt
                self._run(cell)
        except CheckpointUsageError as exc:
            raise UsageError(str(exc)) from None
        finally:
            display.close()

    def _run(self, cell: str) -> None:
        """Run the cell body as IPython would (magics, ``!shell``), letting exceptions out."""
        code = self.shell.transform_cell(cell)
        filename = self.shell.compile.cache(code)
        exec(self.shell.compile(code, filename, "exec"), self.shell.user_ns)


@magics_class
class DriveMagics(Magics):
    @magic_arguments()
    @argument("--url", default=None, help="a Drive-compatible server (the emulator's URL)")
    @argument(
        "--token-file",
        default=None,
        help="file holding that server's token (else $COLAB_MAGICS_DRIVE_TOKEN); "
        "a token is never passed on the line, where the notebook would keep it",
    )
    @argument("--credentials", default=None, help="a service-account key file: real Drive")
    @argument("--mount", default=None, help="where My Drive is mounted (Colab: automatic)")
    @argument(
        "--scope",
        choices=("file", "drive"),
        default="file",
        help="file: only what this extension creates (default); drive: all your files",
    )
    @argument("--data-dir", default=None, help="where the embedded emulator keeps its files")
    @line_magic
    def drive_connect(self, line: str) -> None:
        """Connect to Drive (Colab, a server, a service account) or start the local emulator.

        With no options: Colab's account on Colab; $COLAB_MAGICS_DRIVE_URL if set;
        application-default credentials if present; else the embedded emulator.
        """
        args = _parse(self.drive_connect, line)
        token = None
        if args.token_file:
            try:
                with open(args.token_file) as f:
                    token = f.read().strip()
            except OSError as exc:
                raise UsageError(f"--token-file: cannot read {args.token_file}: {exc}") from None
        try:
            client = connect(
                url=args.url,
                token=token,
                credentials_file=args.credentials,
                mount=args.mount,
                scope=args.scope,
                data_dir=args.data_dir,
            )
        except (ValueError, OSError, DriveError) as exc:
            raise UsageError(str(exc).splitlines()[0]) from None
        previous = use_client(client)
        if previous is not None and previous is not client:
            previous.close()
        print(client.description)


ALL_MAGICS = (CheckpointMagics, DriveMagics)
