"""spark-submit entry point: the ``sparkml-jobs`` command line, run by a Spark driver.

    spark-submit --py-files sparkml_jobs.zip submit/entry.py linreg fit --input ... --output ...

Same arguments, outputs and exit codes as the ``sparkml-jobs`` console script (0 ok, 2 bad usage or
input, 1 any other failure): ``spark-submit`` exits with this script's exit code. The session keeps
the master and configuration given to ``spark-submit`` unless ``--master`` is passed after the
script. ``submit/run.sh`` builds the zip and wraps all of this.
"""

from __future__ import annotations

import os
import sys

STDERR_ENV = "SPARKML_JOBS_STDERR"


def _restore_stderr() -> None:
    """Send this process's stderr back to a separate stream.

    ``spark-submit`` merges a Python driver's stderr into its stdout (``redirectErrorStream``),
    which would mix progress lines into the results. ``submit/run.sh`` passes a FIFO whose reader
    copies to its own stderr; without one (plain ``spark-submit``) nothing changes.
    """
    path = os.environ.pop(STDERR_ENV, None)
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # fails at once if nobody reads
    except OSError:
        return
    os.set_blocking(fd, True)
    sys.stderr.flush()
    os.dup2(fd, 2)
    os.close(fd)


def run() -> int:
    _restore_stderr()
    from sparkml_jobs.cli import main

    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(run())
