"""CLI: flags -> the job's objects (bulk_sync.Sync), progress bar, printed summary, exit codes.
Nothing imports this module.

Exit codes: 0 every row synced (or valid, for `validate`); 1 the run finished but some rows did
not sync; 2 could not start (bad flags, mapping or file; nothing sent); 3 aborted mid-run (the
token was refused, a signal).

The parts, one way (each imports only those listed before it):

    epilogs    the examples under each command's --help
    progress   the progress bar, the printed summary, messages on stderr; the CLI's logger
    values     the types that check a flag's value
    profile    the config profile as flag defaults; a --sandbox rehearsal sets it aside
    tools      the flags of watch, init-mapping, sandbox, delete
    parser     argparse with "did you mean"
    process    what the CLI reads from the environment and sets in its process for a run
    args       the flags of every command (build_parser) and their types
    delete     delete by externalId; the state forgets each id as SIRO confirms it
    streams    standard input and pipes, read once into a temporary file
    outputs    a job's events on the terminal: the bar, the problems `validate` lists
    run        run / retry / validate: flags -> bulk_sync.Sync, its result printed, the exit code
    commands   init-mapping, sandbox, serve; watch's routes checked
    scratch    each run's own temporary folder; the folders of killed runs removed at the next start
    watching   watch: each route's run flags made a JobSpec once, at start; the Watcher started
    child      (python -m bulk_sync.cli.child) the watcher's child: one JobSpec from stdin, run
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..errors import EXIT_ABORTED, EXIT_ROWS_FAILED, BulkSyncError
from ..settings import token_file_warning
from ..signals import hold, release
from .args import build_parser, parse
from .commands import init_mapping_command, sandbox_command, serve_command
from .profile import rehearse
from .progress import err
from .run import could_not_start, finish, run_command
from .scratch import run_folder
from .watching import watch_command


def main(argv: Sequence[str] | None = None) -> int:
    hold()  # (again: `bulk-sync` comes here first) a signal is noted; a run acts on it (see signals)
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        release(deliver=False)  # a signal held after the run has decided its exit code changes nothing


_HOLDING = {"run", "validate", "retry"}  # commands that act on a held signal; the others as before


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parse(argv, parser)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        return exc.exit_code
    if args.command not in _HOLDING:
        release(deliver=True)  # they handle signals their own way (a sandbox stops on Ctrl-C)
    if getattr(args, "token_file", None) and (warning := token_file_warning(args.token_file)):
        err(warning)
    try:
        for line in rehearse(args, args.origin):
            if not getattr(args, "quiet", False):
                print(line, flush=True)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        return exc.exit_code
    try:
        if args.command == "completion":
            import shtab

            print(shtab.complete(parser, args.shell))
            return 0
        if args.command == "sandbox":
            return sandbox_command(args)
        if args.command == "watch":
            return watch_command(args)
        if args.command == "init-mapping":
            return init_mapping_command(args)
        if args.command == "serve":
            return serve_command(args)
        if args.command == "delete":
            from .delete import delete_command

            return delete_command(args)
        with run_folder():  # this run's temporary files; those of killed runs removed first
            return run_command(args)
    except BulkSyncError as exc:
        err(f"error: {exc}")
        if could_not_start(exc):
            finish(args, exc.exit_code, str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_ABORTED
    except BrokenPipeError:  # e.g. `bulk-sync validate ... --show 5 | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_ROWS_FAILED
