"""What every measuring module shares: timing, repeats in rotated order, failures, load average.

A measurement is a dict with at least ``seconds`` (``None`` when it failed, with ``error``) and
the 1-min load average just before and just after it (``loadavg_before`` / ``loadavg_after``):
the rendered results show those measured values instead of any sentence about conditions.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks import common
from benchmarks.common import DATA

K = 10
# Logs, metrics and model outputs of this run's processes: one directory per run, so two runs at
# the same time (another session's `make bench`) never read each other's files.
RUN_DIR = DATA / "runs" / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
# Above this 1-min load average at start (2 cores here) other work competes for the cores, and
# the figures are marked "measured under load" (issue 14: such figures did not reproduce).
LOAD_LIMIT = 1.5

Measurement = dict[str, Any]


def say(message: str) -> None:
    """Print one time-stamped progress line of the harness."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_snapshot() -> list[float]:
    """The 1-, 5- and 15-min load averages now, from :func:`os.getloadavg`."""
    return [round(value, 2) for value in os.getloadavg()]


def warn_if_loaded(start: list[float]) -> bool:
    """Print a warning when the 1-min load at start is above :data:`LOAD_LIMIT`; say if it was."""
    if start[0] <= LOAD_LIMIT:
        return False
    bar = "!" * 78
    say(bar)
    say(
        f"WARNING: load average at start is {start[0]:.2f} (1 min) / {start[1]:.2f} (5 min), "
        f"above {LOAD_LIMIT}: other work is using the cores."
    )
    say("Timings will be noisy; the output is marked 'measured under load' (not a result).")
    say(bar)
    return True


def measured_loads(node: object) -> list[float]:
    """Every ``loadavg_before`` / ``loadavg_after`` value recorded anywhere under ``node``."""
    found: list[float] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("loadavg_before", "loadavg_after") and isinstance(value, int | float):
                found.append(float(value))
            else:
                found.extend(measured_loads(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(measured_loads(item))
    return found


def rotate(items: list, rep: int) -> list:
    """``items`` shifted by ``rep``: each repeat starts with a different system."""
    shift = rep % len(items)
    return items[shift:] + items[:shift]


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not ``None`` (``None`` if there are none)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[Measurement], key: str = "seconds") -> dict:
    """The runs of one system, their median ``key`` and how many succeeded."""
    ok = [r for r in runs if r.get("error") is None and r.get(key) is not None]
    return {
        "runs": runs,
        "median_s": median(r[key] for r in ok),
        "n": len(ok),
        "errors": [r["error"] for r in runs if r.get("error")],
    }


def medians_of(runs: list[Measurement], keys: Iterable[str]) -> dict[str, float | None]:
    """Median of each of ``keys`` over the successful runs."""
    ok = [r for r in runs if not r.get("error")]
    return {key: median(r.get(key) for r in ok) for key in keys}


def timed(fn: Callable, *args: Any, **kwargs: Any) -> tuple[float, Any, float, float]:
    """``(seconds, fn(...), load before, load after)``."""
    before = common.loadavg()
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out, before, common.loadavg()


def attempt(runs: list[Measurement], label: str, fn: Callable[[], Measurement]) -> None:
    """Run one measurement; a failure is recorded (and printed), never fatal to the benchmark."""
    try:
        result = fn()
        runs.append(result)
        extra = ", ".join(
            f"{k}={v}"
            for k, v in result.items()
            if k in ("iterations", "exit_code") and v is not None
        )
        say(
            f"  {label}: {result.get('seconds', float('nan')):.2f} s"
            + (f" ({extra})" if extra else "")
            + f" [load {result.get('loadavg_before')} -> {result.get('loadavg_after')}]"
        )
    except Exception as exc:  # noqa: BLE001 - recorded in results.json
        say(f"  {label}: FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        traceback.print_exc()
        runs.append({"seconds": None, "error": f"{type(exc).__name__}: {str(exc)[:500]}"})


def run_rotated(
    systems: dict[str, tuple[Callable[[], Measurement], int]], label: str
) -> dict[str, list[Measurement]]:
    """Repeat every system its own number of times, alternating systems within each repeat.

    Parameters
    ----------
    systems : dict
        ``{name: (measure, repeats)}``.
    label : str
        Prefix of the progress lines.

    Returns
    -------
    dict
        ``{name: [measurement, ...]}``.
    """
    runs: dict[str, list[Measurement]] = {name: [] for name in systems}
    for rep in range(max((n for _, n in systems.values()), default=0)):
        for name in rotate(list(systems), rep):
            measure, repeats = systems[name]
            if rep < repeats:
                attempt(runs[name], f"{label} {name} #{rep + 1}", measure)
    return runs


class IterationLog(logging.Handler):
    """Time stamps of our k-means 'iteration …' log lines (for the steady-state iteration time)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stamps: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("iteration"):
            self.stamps.append(record.created)

    def steady(self) -> float | None:
        """Mean time between iteration lines after the first (``None`` under 3 lines)."""
        s = self.stamps
        return (s[-1] - s[0]) / (len(s) - 1) if len(s) >= 3 else None
