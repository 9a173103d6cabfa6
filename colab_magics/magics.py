"""The IPython surface: parse a magic's arguments, call one public function, render.

No logic lives here that a plain Python user could not reach through ``colab_magics.*``.
"""

from __future__ import annotations

import contextlib
import os
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, kwds, magic_arguments

from colab_magics import background, gcs, ui
from colab_magics.checkpoint.api import checkpointed, parse_names
from colab_magics.checkpoint.cellshape import CellShapeError, check_cell
from colab_magics.checkpoint.durations import parse_duration
from colab_magics.checkpoint.session import CheckpointUsageError
from colab_magics.connection import current_client, mount_root, read_token_file, reconnect
from colab_magics.drive import DriveError
from colab_magics.guard import Guard, install, installed
from colab_magics.guard.mountview import FlushTimeout, MountView, describe
from colab_magics.guard_command import ACTIONS as GUARD_ACTIONS
from colab_magics.guard_command import guard_command
from colab_magics.magic_args import (
    DefaultsHelp,
    expand_unless_deleting,
    parse_line,
    redact_text,
    url_secrets,
)
from colab_magics.magic_output import Interrupted, interrupted_line, panel, usage_errors
from colab_magics.progress import Progress
from colab_magics.sync import purge
from colab_magics.sync_command import ERRORS as SYNC_ERRORS
from colab_magics.sync_command import run_sync, sync_request
from colab_magics.units import format_bytes, format_seconds, plural


def _help():
    """``%magic?`` shows every default (a new decorator per magic: IPython stores its dict)."""
    return kwds(formatter_class=DefaultsHelp)


_CHECKPOINT_OPTIONS = ("every", "keep", "to", "lifetime", "margin", "fresh", "directory")
_REFUSED = (ValueError, OSError, DriveError, gcs.GcsError)


@magics_class
class CheckpointMagics(Magics):
    @magic_arguments("%checkpointed")  # IPython adds one "%": shown as %%checkpointed
    @_help()
    @argument("name", help="names the run; checkpoints go to colab_magics/checkpoints/NAME")
    @argument(
        "--save",
        default="",
        help="variables to capture, comma-separated: model,opt (default: "
        "none, then --dir is needed)",
    )
    @argument("--every", default="10m", help="cadence: a duration (90s, 10m, 1h) or a step count")
    @argument("--keep", type=int, default=3, help="confirmed checkpoints kept on Drive")
    @argument(
        "--dir",
        dest="directory",
        default=None,
        help="a folder the trainer writes its own checkpoints into: restored before the cell, "
        "pushed while it runs, confirmed at the end (default: none)",
    )
    @argument(
        "--to",
        default=None,
        help="a Drive folder for the run (default: colab_magics/checkpoints/NAME)",
    )
    @argument(
        "--lifetime",
        default=None,
        help="how long this runtime lives, counted from its start (default: 12h on Colab, "
        "where 24h is Colab Pro's; elsewhere none: no deadline unless given; 'none': off; "
        "or ColabMagics.lifetime)",
    )
    @argument(
        "--margin",
        default=None,
        help="stop this long before the runtime's end (default: 10m, or ColabMagics.margin)",
    )
    @argument("--as", dest="as_name", default="ckpt", help="the name the cell uses")
    @argument(
        "--fresh",
        action="store_true",
        help="ignore existing checkpoints, start at step 0 "
        "(default: resume from the newest confirmed one)",
    )
    @cell_magic
    def checkpointed(self, line: str, cell: str) -> None:
        """Run a training cell that resumes from the newest checkpoint Drive has confirmed.

        In the cell, loop with ``for epoch, batch in ckpt.batches(loader, epochs=N):`` or
        ``for step in ckpt.range(N):``; state named by ``--save`` is
        captured at step boundaries on the ``--every`` cadence and uploaded in the background.
        """
        args = parse_line(self.checkpointed, line)
        if not cell.strip():  # Colab's shell passes ' ' where IPython refuses an empty body
            raise UsageError(f"%%checkpointed {args.name}: the cell is empty: put the training "
                             "loop on the lines below %%checkpointed")  # fmt: skip
        if not args.as_name.isidentifier():
            raise UsageError(f"--as {args.as_name!r} is not a variable name")
        names = (self.shell.user_ns, parse_names(args.save), args.directory is not None)
        with usage_errors(CellShapeError):
            notes = check_cell(self.shell.transform_cell(cell), args.as_name, *names)
        for note in notes:
            print(f"Warning: {note}", file=sys.stderr)
        progress = Progress(f"checkpointed {args.name}")
        options = {k: getattr(args, k) for k in _CHECKPOINT_OPTIONS}
        # Refused before the cell's first line ran (a bad --to or --dir, Drive unreachable):
        # nothing of the user's code to show a traceback for.
        refused = usage_errors(*_REFUSED, template=f"checkpointed {args.name}: {{}}")
        ckpt = None
        try:
            with panel(progress, CheckpointUsageError), contextlib.ExitStack() as stack:
                with refused, usage_errors(CheckpointUsageError):
                    ckpt = stack.enter_context(checkpointed(
                        args.name, save=parse_names(args.save), namespace=self.shell.user_ns,
                        progress=progress, **options))  # fmt: skip
                self.shell.user_ns[args.as_name] = ckpt
                self._run(cell)
        except KeyboardInterrupt:
            step = None if ckpt is None else ckpt.step
            raise Interrupted(interrupted_line(step, progress.get("confirmed_step"))) from None

    def _run(self, cell: str) -> None:
        """Run the cell body the way IPython runs a cell (as ``%%time`` does): input
        transformers (magics, ``!cmd``), then ``shell.ast_transformers`` (the Drive guard among
        them), compiled under a cached name so tracebacks show the cell's own lines.
        Exceptions propagate."""
        shell = self.shell
        # One blank line stands for the %%checkpointed line: line N here is line N of the cell.
        code = "\n" + shell.transform_cell(cell)
        filename = shell.compile.cache(code, shell.execution_count)
        tree = shell.compile.ast_parse(code, filename=filename)
        tree = shell.transform_ast(tree)
        exec(shell.compile(tree, filename, "exec"), shell.user_global_ns, shell.user_ns)


@magics_class
class DriveMagics(Magics):
    @magic_arguments()
    @_help()
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
        help="file: only what this extension creates; drive: all your files",
    )
    @argument("--data-dir", default=None, help="where the embedded emulator keeps its files")
    @line_magic
    def drive_connect(self, line: str) -> None:
        """Connect to Drive (Colab, a server, a service account) or start the local emulator.

        With no options: Colab's account on Colab; $COLAB_MAGICS_DRIVE_URL if set;
        application-default credentials if present; else the embedded emulator.
        """
        # Stray words on this line may be a token pasted in: no error shows them.
        args = parse_line(self.drive_connect, line, hide_values=True)
        secrets = [args.token_file, args.credentials, *url_secrets(args.url)]
        with usage_errors(ValueError):
            token = read_token_file(args.token_file) if args.token_file else None
        secrets.append(token)
        with usage_errors(ValueError, OSError, DriveError, secrets=secrets):
            client = reconnect(url=args.url, token=token, credentials_file=args.credentials,
                               mount=args.mount, scope=args.scope,
                               data_dir=args.data_dir)  # fmt: skip
        old = installed(self.shell)
        if old is not None:  # the guard follows the connection's mount
            new = install_guard(self.shell)
            new.enabled, new.warn = old.enabled, old.warn
        print(redact_text(client.description, secrets))


_SYNC_OPTIONS = ("jobs", "delete", "watch", "shard", "dry_run", "extract", "max_size")


@magics_class
class SyncMagics(Magics):
    @no_var_expand  # expanded by expand_unless_deleting: a variable never steers --delete
    @magic_arguments()
    @_help()
    @argument("action", choices=("push", "pull", "stop"), help="push, pull, or stop watches")
    @argument("paths", nargs="*", help="push LOCAL DRIVE_PATH | pull DRIVE_PATH LOCAL")
    @argument("--delete", action="store_true", help="push: remove on Drive what is gone locally")
    @argument("--watch", action="store_true", help="push: keep pushing changes until stop")
    @argument(
        "--shard",
        type=int,
        default=None,
        help="push: at most N files per Drive folder (default: no limit)",
    )
    @argument(
        "--jobs",
        type=int,
        default=None,
        help="transfers in parallel (default: 8, or ColabMagics.jobs)",
    )
    @argument("--dry-run", action="store_true", help="push: print the plan, change nothing")
    @argument("--extract", action="store_true", help="pull: extract a .zip/.tar(.gz) locally")
    @argument(
        "--max-size",
        default=None,
        help="pull: the most bytes to accept, like 500M or 10G (default: the safety limit)",
    )
    @line_magic
    def drive_sync(self, line: str) -> None:
        """Push a local tree to Drive or pull one from it: parallel, resumable, md5-verified.

        Nothing Drive already has (same size and md5) is sent again; a re-run after a kill
        continues where it stopped.
        """
        args = parse_line(self.drive_sync, expand_unless_deleting(self.shell, line))
        if args.action == "stop":
            _print_stopped(background.stop_watches())
            return
        with usage_errors(ValueError):
            request = sync_request(args.action, args.paths,
                                   **{k: getattr(args, k) for k in _SYNC_OPTIONS})  # fmt: skip
        client = None if request.bucket else current_client()
        progress = Progress(request.title)
        if request.watch:
            with usage_errors(ValueError, DriveError):
                background.start_watch(request.source, request.dest, client=client,
                                       progress=progress)  # fmt: skip
            ui.show(progress)
            print(f"Pushing {request.source} to drive:{request.dest} as it changes; "
                  "%drive_sync stop to end.")  # fmt: skip
            return
        with panel(progress, DriveError, *SYNC_ERRORS):
            report = run_sync(request, client=client, progress=progress)
        for plan_line in report.plan_summary() if report.dry_run else []:
            print(plan_line)
        print(report.summary())

    @no_var_expand  # --empty-trash deletes for good: written on the line, never from a variable
    @magic_arguments()
    @_help()
    @argument("--empty-trash", action="store_true", help="delete the trash for good, then show")
    @line_magic
    def drive_quota(self, line: str) -> None:
        """Drive's storage: limit, used, and how much of it is in the trash."""
        args = parse_line(self.drive_quota, line)
        client = current_client()
        with usage_errors(DriveError):
            if args.empty_trash:
                before = client.quota()
                client.empty_trash()
                print(f"Emptied the trash: {format_bytes(before.usage_in_trash)} freed.")
            print(purge.quota_summary(client.quota()))

    @no_var_expand  # a variable must never redirect a deletion
    @magic_arguments()
    @_help()
    @argument("path", help="the Drive folder or file to delete")
    @argument("--yes", action="store_true", help="do not ask before deleting")
    @argument("--trash", action="store_true", help="move it to the trash instead (recoverable)")
    @line_magic
    def drive_purge(self, line: str) -> None:
        """Delete a Drive tree permanently, in batches, with progress (a re-run continues).

        Unlike deleting in Drive's page, the space comes back at once: nothing goes to the trash.
        """
        args = parse_line(self.drive_purge, line)
        client = current_client()
        with usage_errors(ValueError, DriveError):
            plan = purge.plan_purge(args.path, client=client)
        how = "move to the trash" if args.trash else "delete permanently"
        if not args.yes:
            answer = input(f"{how.capitalize()} {plan.describe()}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                return
        progress = Progress(f"drive_purge {args.path}")
        with panel(progress, DriveError, template="{} Run it again to continue."):
            report = purge.purge(plan, client=client, trash=args.trash, progress=progress)
        if report.trashed:
            print(f"Moved drive:{args.path} to the trash ({format_bytes(report.bytes)} still "
                  "counted until the trash is emptied: %drive_quota --empty-trash).")  # fmt: skip
        else:
            print(f"Deleted {plural(report.deleted_files, 'file')} and "
                  f"{plural(report.deleted_folders, 'folder')} permanently: "
                  f"{format_bytes(report.bytes)} freed "
                  f"in {format_seconds(report.seconds)}.")  # fmt: skip


def _print_stopped(outcome: dict) -> None:
    if not outcome:
        print("No %drive_sync push --watch is running.")
    for (local, drive_path), result in outcome.items():
        if isinstance(result, Exception):
            print(f"{local} → drive:{drive_path}: {result}")
        else:
            print(f"{local} → drive:{drive_path}: stopped; {result.summary()}")


@magics_class
class MountMagics(Magics):
    @magic_arguments()
    @_help()
    @argument("paths", nargs="*", help="mount paths to look at (default: the whole mount)")
    @line_magic
    def drive_status(self, line: str) -> None:
        """What is not on Drive yet: files written to the mount in this runtime that Drive
        does not show with the same size and md5, and background pushes still running.

        Colab shows DriveFS's upload queue nowhere; asking Drive is the only truth.
        """
        args = parse_line(self.drive_status, line)
        view = _mount_view(args.paths)
        if view is not None:
            with usage_errors(OSError, ValueError, DriveError):
                print(describe(view.pending(args.paths or None)))
        for local, drive_path in background.watching():
            print(f"pushing {local} → drive:{drive_path} as it changes (%drive_sync stop ends it)")

    @magic_arguments()
    @_help()
    @argument("paths", nargs="*", help="mount paths to wait for (default: everything pending)")
    @argument("--timeout", default="10m", help="give up after this long")
    @argument("--push", action="store_true", help="upload them through the API now instead")
    @line_magic
    def drive_flush(self, line: str) -> None:
        """Wait until files written to the mount are on Drive — without unmounting.

        With ``--push`` they are uploaded through the API (md5-verified) instead of waiting
        for the mount: for when the runtime's end is near.
        """
        args = parse_line(self.drive_flush, line)
        with usage_errors(ValueError, template="--timeout: {}"):
            timeout = parse_duration(args.timeout)
        view = _mount_view(args.paths)
        if view is None:
            return
        progress = Progress("drive_flush")
        with panel(progress, FlushTimeout, OSError, ValueError, DriveError):
            report = view.flush(args.paths or None, timeout=timeout, push=args.push,
                                progress=progress)  # fmt: skip
        print(report)

    @magic_arguments()
    @_help()
    @argument("action", choices=GUARD_ACTIONS)
    @argument("path", nargs="?", help="for watch/unwatch: a mount path checked before every cell")
    @argument("--warn", action="store_true", help="with on: warn instead of stopping the cell")
    @argument("--depth", type=int, default=0, help="with watch: also check subfolders this deep")
    @line_magic
    def drive_guard(self, line: str) -> None:
        """Check the mount paths a cell names against Drive before the cell's first line runs.

        A missing path or a partial listing (the mount timed out and listed less than Drive
        holds) stops the cell with what to do; files still pending upload, huge folders and a
        nearly full Drive are warned about.
        """
        args = parse_line(self.drive_guard, line)
        guard = installed(self.shell) or install_guard(self.shell)
        with usage_errors(ValueError, DriveError):
            lines = guard_command(guard, args.action, args.path, warn=args.warn, depth=args.depth)
        print("\n".join(lines))


def _mount_view(paths: list[str]) -> MountView | None:
    """The mount compared with Drive; None (and a line saying so) when nothing is mounted."""
    view = MountView(current_client())
    if not paths and not os.path.isdir(view.mount_root):
        print(f"No Drive mount at {view.mount_root}: nothing written through it to wait for.")
        return None
    return view


def install_guard(shell) -> Guard:
    """The guard every loaded shell gets: on, lazy (Drive is asked only once a cell names the
    mount), for the mount the current connection uses."""
    guard = Guard(current_client, mount_root=mount_root())
    install(shell, guard)
    return guard


ALL_MAGICS = (CheckpointMagics, DriveMagics, SyncMagics, MountMagics)
