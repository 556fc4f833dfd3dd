"""Progress of long runs: one line rewritten in place on a terminal, plain log lines otherwise.

The iterative loops report through ``logging`` as usual and attach the numbers to the record
(``extra=progress.fields(...)``). :func:`make_handler` picks how records are shown:

* stderr is **not** a terminal (a file, a pipe, a scheduler's log): every record is one plain
  line, exactly as a ``logging.StreamHandler`` writes it, so logs stay greppable;
* stderr **is** a terminal: a record carrying progress fields replaces the previous one in place
  (``\\r`` + erase to end of line), e.g. ``k-means k=4  iteration 7/20  cost 1.234e+03
  shift 0.0012  12.3s``; any other record first ends that line, so the last state stays visible.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, TextIO

PROGRESS = "progress"  # the LogRecord attribute holding the numbers
ERASE_LINE = "\x1b[K"

_open_handlers: weakref.WeakSet[TerminalProgressHandler] = weakref.WeakSet()


def fields(
    iteration: int, max_iter: int, *, label: str = "", elapsed: float | None = None, **values: float
) -> dict[str, Any]:
    """The ``extra=`` of a progress log call: iteration N of ``max_iter`` plus named values.

    Examples
    --------
    >>> log.info("iteration %d: cost %.6g", n, cost, extra=fields(n, 20, cost=cost, shift=shift))
    """
    return {
        PROGRESS: {
            "iteration": iteration,
            "max_iter": max_iter,
            "label": label,
            "elapsed": elapsed,
            "values": values,
        }
    }


def render(progress: dict[str, Any]) -> str:
    """The one-line text of a progress record (without the leading ``\\r``)."""
    parts = [progress["label"]] if progress.get("label") else []
    parts.append(f"iteration {progress['iteration']}/{progress['max_iter']}")
    parts += [f"{name} {value:.4g}" for name, value in progress["values"].items()]
    if progress.get("elapsed") is not None:
        parts.append(f"{progress['elapsed']:.1f}s")
    return "  ".join(parts)


class TerminalProgressHandler(logging.StreamHandler):
    """A StreamHandler for a terminal: progress records share one line, rewritten in place."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._line_open = False
        _open_handlers.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        progress = getattr(record, PROGRESS, None)
        if progress is None:
            self.end_line()
            super().emit(record)
            return
        try:
            line = logging.makeLogRecord({**record.__dict__, "msg": render(progress), "args": None})
            self.stream.write(f"\r{self.format(line)}{ERASE_LINE}")
            self.flush()
            self._line_open = True
        except Exception:  # as logging does: a display problem never fails the job
            self.handleError(record)

    def end_line(self) -> None:
        """Finish an in-place line so whatever is written next starts on a fresh line."""
        if self._line_open:
            self._line_open = False
            try:
                self.stream.write("\n")
                self.flush()
            except Exception:  # noqa: BLE001 - the stream may be closed at exit
                pass

    def close(self) -> None:
        self.end_line()
        super().close()


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def make_handler(stream: TextIO) -> logging.StreamHandler:
    """An in-place progress handler when ``stream`` is a terminal, a plain one otherwise."""
    return TerminalProgressHandler(stream) if is_terminal(stream) else logging.StreamHandler(stream)


def end_line() -> None:
    """End every in-place progress line (before printing results or an error message)."""
    for handler in list(_open_handlers):
        handler.end_line()
