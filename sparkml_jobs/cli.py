"""The sparkml-jobs command: linreg fit|predict|evaluate|update, kmeans fit|predict|sweep|evaluate,
export, demo: parse (:mod:`~.parser`, :mod:`~.options`, :mod:`~.config`), then dispatch to
:mod:`~.jobs`.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr), 1 any other failure,
130 / 143 after SIGINT / SIGTERM (temporary outputs removed first).
Progress goes to stderr one line per stage; results (tables) go to stdout.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from sparkml_jobs import config, progress
from sparkml_jobs.errors import InputError
from sparkml_jobs.options import FORMATS, LIST_TYPES, check_args, parse_k_range
from sparkml_jobs.parser import UsageParser, build_parser

__all__ = ["FORMATS", "UsageParser", "build_parser", "main", "parse_args", "parse_k_range"]

log = logging.getLogger("sparkml_jobs")

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal number, as shells report them


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse and check the command line; ``--config job.toml`` values come first, flags win."""
    parser, actions = build_parser()
    args = parser.parse_args(config.with_config(argv, actions, LIST_TYPES))
    check_args(args)
    return args


# --------------------------------------------------------------------------- entry point


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def configure_logging(verbose: bool) -> None:
    """Progress lines on the current stderr (re-bound at every call, for in-process use)."""
    handler = progress.make_handler(sys.stderr)  # in-place progress only on a terminal
    handler.setFormatter(logging.Formatter("sparkml-jobs: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    logging.getLogger("py4j").setLevel(logging.WARNING)


class Terminated(BaseException):
    """SIGTERM (what schedulers send on timeout), raised in the main thread so that every
    ``finally`` runs: temporary outputs are deleted before the process exits with 143."""


def _abandon_interrupted_py4j_call(frame) -> None:
    """Close this thread's py4j connection when the signal interrupted a call to the JVM.

    The interrupted call's reply would otherwise still be waiting on the socket, and the clean-up
    that follows (deleting temporary outputs through the JVM) would read it as its own reply.
    A closed connection makes py4j open a fresh one for the next call.
    """
    while frame is not None and not frame.f_globals.get("__name__", "").startswith("py4j"):
        frame = frame.f_back
    if frame is None:
        return
    try:
        from pyspark import SparkContext

        connection = SparkContext._gateway._gateway_client.get_thread_connection()
        if connection is not None:
            connection.close(reset=True)
    except Exception:  # no session, or another py4j mode: nothing pinned to this thread
        pass


def _raise_terminated(signum, frame) -> None:
    _abandon_interrupted_py4j_call(frame)
    raise Terminated(signum)


def _raise_interrupted(signum, frame) -> None:
    _abandon_interrupted_py4j_call(frame)
    raise KeyboardInterrupt


def _start_spark_early(args: argparse.Namespace) -> None:
    try:
        from sparkml_jobs import session
    except ImportError:  # no pyspark: the action's import says so in one line
        return
    session.start_early(args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    configure_logging(verbose)
    previous = previous_int = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        previous_int = signal.signal(signal.SIGINT, _raise_interrupted)
    try:
        args = parse_args(argv)
        verbose = args.verbose  # verbose = true may come from the config file
        configure_logging(verbose)
        key = args.algo if args.algo in ("demo", "export") else f"{args.algo} {args.action}"
        # after parsing: a usage error costs no Spark import; then the JVM starts while the job
        # code imports (a Spark-free refusal of an action still exits at once: the JVM is a
        # child that ends with this process)
        _start_spark_early(args)
        from sparkml_jobs import jobs, tracking
        from sparkml_jobs.io import persist

        try:
            result = jobs.with_row_account(args, tracking.run_action(key, args, jobs.ACTIONS[key]))
        finally:
            progress.end_line()  # results and error messages start on a fresh line
        persist.write_json(getattr(args, "metrics_json", None), result)
        return EXIT_OK
    except InputError as exc:
        print(f"sparkml-jobs: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sparkml-jobs: interrupted (SIGINT); temporary outputs removed", file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print("sparkml-jobs: terminated (SIGTERM); temporary outputs removed", file=sys.stderr)
        return EXIT_SIGTERM
    except Exception as exc:  # anything else: one line, the traceback only when asked for
        if verbose:
            log.exception("failed")
        print(
            f"sparkml-jobs: failed: {type(exc).__name__}: {_one_line(exc)}"
            + ("" if verbose else " (run with --verbose for the traceback)"),
            file=sys.stderr,
        )
        return EXIT_FAILURE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)


if __name__ == "__main__":
    sys.exit(main())
