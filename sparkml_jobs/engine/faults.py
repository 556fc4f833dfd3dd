"""Test-only fault injection: make the first attempt of chosen Spark tasks fail.

Set ``SPARKML_JOBS_FAIL_FIRST_ATTEMPT`` in the environment of the Python workers, e.g. with
``spark-submit --conf spark.executorEnv.SPARKML_JOBS_FAIL_FIRST_ATTEMPT=all`` (PySpark hands every
``spark.executorEnv.*`` entry to its Python workers, in local mode too). Values:

``all`` (or ``*``)
    every task of every aggregation fails on its first attempt;
``0,2`` (comma-separated partition indices)
    only the tasks of those partitions fail on their first attempt.

Retries (``attemptNumber() >= 1``) always pass, so with ``spark.task.maxFailures >= 2`` (e.g. master
``local[2,4]``) a job finishes and — the partial results being pure functions of their partition —
must give a result identical to an undisturbed run. Unset (the normal case) the hook costs one
dictionary lookup per task.
"""

from __future__ import annotations

import os

ENV_VAR = "SPARKML_JOBS_FAIL_FIRST_ATTEMPT"


class InjectedFault(RuntimeError):
    """The failure raised by :func:`maybe_fail` (never raised unless the variable is set)."""


def selected(spec: str, partition: int) -> bool:
    """Whether ``spec`` (``all``, ``*`` or ``i,j,…``) selects ``partition``."""
    spec = spec.strip().lower()
    if spec in ("all", "*"):
        return True
    try:
        return partition in {int(part) for part in spec.split(",") if part.strip()}
    except ValueError as exc:
        raise ValueError(
            f"{ENV_VAR}={spec!r}: expected 'all', '*' or comma-separated partition indices"
        ) from exc


def maybe_fail(partition: int) -> None:
    """Raise :class:`InjectedFault` in the first attempt of a selected task (executor side)."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None or context.attemptNumber() != 0 or not selected(spec, partition):
        return
    raise InjectedFault(
        f"injected fault ({ENV_VAR}={spec}): stage {context.stageId()} partition {partition} "
        f"attempt {context.attemptNumber()}"
    )


BARRIER_PROPERTY = "sparkml_jobs.fail_barrier_once"


def maybe_fail_barrier_once(partition: int, context) -> None:
    """Test-only: make task 0 of a barrier stage fail once (executor side).

    A failed barrier task makes Spark re-run the *whole stage*, whose tasks start again at
    attempt 0 (PySpark exposes no stage attempt number), so :func:`maybe_fail` would fail every
    retry. Instead the Spark local property :data:`BARRIER_PROPERTY` names a marker file: the
    task that creates it (``O_EXCL``: exactly one, once) raises. A local property is set on the
    driver's thread (``sc.setLocalProperty``) and reaches the tasks of that thread's jobs, so a
    test in a shared session can use it. Unset: one property lookup per barrier task.
    """
    marker = context.getLocalProperty(BARRIER_PROPERTY)
    if not marker or partition != 0:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    raise InjectedFault(f"injected fault ({BARRIER_PROPERTY}={marker}): barrier task 0")


PAUSE_VAR = "SPARKML_JOBS_PAUSE_BEFORE_COMMIT"


def pause_before_commit() -> None:
    """Test-only: sleep ``$SPARKML_JOBS_PAUSE_BEFORE_COMMIT`` seconds (driver side) once an
    output is fully written to its temporary sibling and before it is published, so that tests
    can send a signal or start a competing writer at that exact moment. Unset: no-op."""
    seconds = os.environ.get(PAUSE_VAR)
    if seconds:
        import time

        time.sleep(float(seconds))
