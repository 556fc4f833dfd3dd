"""A self-contained HTML page of plots and tables, written atomically beside its PNGs.

No matplotlib here: a :class:`Section` carries an already drawn figure (anything with
``savefig``), saved as ``image`` next to ``report.html`` and referenced by that relative name.
The page has no scripts and no network assets, so it opens from a file system or an archive.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkml_jobs.io.persist import atomic_output

REPORT_FILE = "report.html"
DPI = 110

CSS = """
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --rule: #d9e2ec; --band: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
header { padding: 20px 32px 14px; border-bottom: 1px solid var(--rule); background: var(--band); }
h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header p { margin: 2px 0; color: var(--muted); overflow-wrap: anywhere; }
main { padding: 8px 32px 32px; max-width: 1280px; }
section { padding: 18px 0; border-bottom: 1px solid var(--rule); }
h2 { margin: 0 0 10px; font-size: 17px; font-weight: 600; }
.row { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 24px;
       align-items: start; }
.row.stack { grid-template-columns: minmax(0, 1fr); }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); border-radius: 4px; }
figcaption, .note { color: var(--muted); font-size: 13px; margin-top: 6px; }
.tables { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 14px; width: 100%; }
caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--rule); white-space: nowrap; }
th { text-align: left; font-weight: 600; background: var(--band); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.stack table { width: auto; min-width: 40%; }
.stack td.num, .stack th.num { padding-left: 28px; }
details summary { cursor: pointer; color: var(--muted); font-size: 13px; margin-bottom: 6px; }
@media (max-width: 900px) { .row { grid-template-columns: minmax(0, 1fr); } }
"""


@dataclass(frozen=True, kw_only=True)
class Table:
    """Cells already formatted as text; all columns but the first are right-aligned numbers."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    collapsed: bool = False  # long tables (e.g. every iteration) start folded


@dataclass(frozen=True, kw_only=True)
class Section:
    title: str
    image: str | None = None  # PNG file name beside the page
    figure: Any = None  # drawn figure saved as ``image``
    alt: str = ""
    caption: str = ""
    tables: list[Table] = field(default_factory=list)
    stack: bool = False  # tables below the figure (wide tables) instead of beside it


def _table_html(table: Table) -> str:
    head = "".join(
        f"<th{'' if j == 0 else ' class=num'}>{html.escape(h)}</th>"
        for j, h in enumerate(table.headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{'' if j == 0 else ' class=num'}>{html.escape(cell)}</td>"
            for j, cell in enumerate(row)
        )
        + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    markup = f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if table.collapsed:
        summary = html.escape(table.caption or "table")
        return f"<details><summary>{summary}</summary>{markup}</details>"
    return markup


def _section_html(section: Section) -> str:
    parts = []
    if section.image:
        caption = (
            f"<figcaption>{html.escape(section.caption)}</figcaption>" if section.caption else ""
        )
        parts.append(
            f'<figure><img src="{html.escape(section.image)}" '
            f'alt="{html.escape(section.alt or section.title)}">{caption}</figure>'
        )
    elif section.caption:
        parts.append(f'<p class="note">{html.escape(section.caption)}</p>')
    if section.tables:
        parts.append('<div class="tables">' + "".join(map(_table_html, section.tables)) + "</div>")
    layout = "row" if len(parts) == 2 and not section.stack else "row stack"
    return (
        f"<section><h2>{html.escape(section.title)}</h2>"
        f'<div class="{layout}">{"".join(parts)}</div></section>'
    )


def render_page(title: str, lines: list[str], sections: list[Section]) -> str:
    """The HTML text: a header (title and descriptive lines), then one block per section."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = "".join(f"<p>{html.escape(line)}</p>" for line in [*lines, f"generated {stamp}"])
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body><header><h1>{html.escape(title)}</h1>{header}</header>"
        f"<main>{''.join(map(_section_html, sections))}</main></body></html>\n"
    )


def write_into(directory: Path, title: str, lines: list[str], sections: list[Section]) -> Path:
    """Save every section's figure as its PNG and the page as ``report.html`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for section in sections:
        if section.figure is not None and section.image:
            section.figure.savefig(directory / section.image, dpi=DPI, format="png")
    page = directory / REPORT_FILE
    page.write_text(render_page(title, lines, sections), encoding="utf-8")
    return page


def write_report(
    path: str, title: str, lines: list[str], sections: list[Section], overwrite: bool = False
) -> str:
    """Write the page and its PNGs to the directory ``path`` atomically (``_SUCCESS`` when done)."""
    with atomic_output(path, overwrite) as tmp:
        write_into(tmp, title, lines, sections)
    return f"{str(path).rstrip('/')}/{REPORT_FILE}"
