"""Formatting of measured values and the one Markdown table helper every section uses."""

from __future__ import annotations

from collections.abc import Sequence

DASH = "—"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table: header row, ``---`` rule, one line per row.

    Parameters
    ----------
    headers : sequence of str
        Column titles ("" for an empty corner cell).
    rows : sequence of sequences of str
        Cells, already formatted; a row shorter than ``headers`` is padded with empty cells.

    Returns
    -------
    str
        The table, lines joined by ``\\n``, without a trailing newline.
    """

    def line(cells: Sequence[str]) -> str:
        # an empty cell is one space ("| |"), never two
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    width = len(headers)
    out = [line(headers), "|" + "---|" * width]
    for row in rows:
        if len(row) > width:
            raise ValueError(f"row has {len(row)} cells, the table {width} columns: {row!r}")
        out.append(line([*row, *[""] * (width - len(row))]))
    return "\n".join(out)


def seconds(v: float | None) -> str:
    """``1.23 s``, or ``45 ms`` under 0.095 s."""
    return DASH if v is None else (f"{v:.2f} s" if v >= 0.095 else f"{v * 1000:.0f} ms")


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``0.51x``."""
    return DASH if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def number(v: float | None) -> str:
    """An iteration count or similar, shortest form."""
    return DASH if v is None else f"{v:g}"


def sig6(v: float | None) -> str:
    """Six significant digits (costs)."""
    return DASH if v is None else f"{v:.6g}"


def gib(v: float | None) -> str:
    """Bytes as GiB (``—`` for missing or zero)."""
    return DASH if not v else f"{v / 2**30:.2f} GiB"


def mb(v: float | None) -> str:
    """Bytes as decimal MB."""
    return DASH if v is None else f"{v / 1e6:.0f} MB"


def get(results: object, *keys: str) -> object:
    """``results[k1][k2]…``, or ``None`` as soon as a level is missing."""
    node = results
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node
