"""Progress display: in place on a terminal, the plain log lines everywhere else."""

from __future__ import annotations

import io
import logging

from sparkml_jobs import progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _logger(stream) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(f"test-progress-{id(stream)}")
    handler = progress.make_handler(stream)
    handler.setFormatter(logging.Formatter("sparkml-jobs: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def _iterate(logger: logging.Logger) -> None:
    logger.info("starting")
    for n, (cost, shift) in enumerate([(120.5, 0.9), (80.25, 0.01)], start=1):
        logger.info(
            "iteration %d: cost %.6g shift %.3g%s (%.1fs)",
            n,
            cost,
            shift,
            "",
            0.5 * n,
            extra=progress.fields(
                n, 20, label="k-means k=3", elapsed=0.5 * n, cost=cost, shift=shift
            ),
        )
    logger.info("model saved")


def test_not_a_terminal_keeps_the_plain_log_lines():
    stream = io.StringIO()
    logger, handler = _logger(stream)
    assert type(handler) is logging.StreamHandler
    _iterate(logger)
    assert stream.getvalue() == (
        "sparkml-jobs: starting\n"
        "sparkml-jobs: iteration 1: cost 120.5 shift 0.9 (0.5s)\n"
        "sparkml-jobs: iteration 2: cost 80.25 shift 0.01 (1.0s)\n"
        "sparkml-jobs: model saved\n"
    )


def test_terminal_rewrites_one_line_in_place():
    stream = FakeTerminal()
    logger, handler = _logger(stream)
    assert isinstance(handler, progress.TerminalProgressHandler)
    _iterate(logger)
    erase = progress.ERASE_LINE
    assert stream.getvalue() == (
        "sparkml-jobs: starting\n"
        f"\rsparkml-jobs: k-means k=3  iteration 1/20  cost 120.5  shift 0.9  0.5s{erase}"
        f"\rsparkml-jobs: k-means k=3  iteration 2/20  cost 80.25  shift 0.01  1.0s{erase}"
        "\nsparkml-jobs: model saved\n"
    )


def test_end_line_finishes_an_open_progress_line_once():
    stream = FakeTerminal()
    logger, _ = _logger(stream)
    logger.info("iteration 1", extra=progress.fields(1, 5, cost=1.0))
    progress.end_line()
    progress.end_line()
    assert stream.getvalue().endswith(f"iteration 1/5  cost 1{progress.ERASE_LINE}\n")
