"""Tables as text: every data row becomes one line that carries its column headers.

Design: `营养素：维生素C；每日最低用量：100mg；每日最高用量：1000mg`. A row line reads on its own, so a
question about one row ("维生素C的每日用量范围") finds it wherever the chunker cuts a long table, and
chunk text stays an exact slice of the normalized document (repeating a header row at the start of
each chunk would have to insert text that is not in the document). The header row itself is not
emitted as a line: every row already says it.

Loaders (PDF ruled tables, DOCX tables, OCR'd table blocks) build a grid of `Cell`s and call
`table_lines`. Each line starts with `TABLE_ROW_MARK`, an invisible character that tells the
normalizer "this line is a table row: never join it with a wrapped paragraph, nor a paragraph
with it"; the normalizer removes the mark, so it never reaches chunks, queries or answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TABLE_ROW_MARK = "\u2063"  # INVISIBLE SEPARATOR: survives NFKC and OpenCC, never typed by anyone
CELL_SEPARATOR = "；"  # between cells of a row line; a kept full-width mark, so normalization keeps it
LABEL_SEPARATOR = "："  # between a column header and its cell
SUBHEADER_SEPARATOR = "·"  # a two-level header: `每日用量·最低`
_MAX_HEADER_ROWS = 3
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Cell:
    """One grid position. A merged cell covers several positions: the first holds the text; the
    others repeat it with `span_left` (continues the cell to the left, same row) or `span_above`
    (continues the cell above: a category spanning rows, repeated in each row it covers)."""

    text: str = ""
    span_left: bool = False
    span_above: bool = False


def cell_text(text: str | None) -> str:
    """A cell's text on one line: its wrapped lines joined by a space (the normalizer drops the
    space between Chinese characters and keeps it between Latin words)."""
    return _SPACES.sub(" ", (text or "").replace(TABLE_ROW_MARK, "")).strip()


def mark(line: str) -> str:
    return TABLE_ROW_MARK + line


def strip_marks(text: str) -> str:
    """Text without table-row marks (for callers that use loader text directly, e.g. drafts)."""
    return text.replace(TABLE_ROW_MARK, "")


def _distinct(texts: list[str]) -> list[str]:
    out: list[str] = []
    for t in texts:
        if t and t not in out:
            out.append(t)
    return out


def _is_title_row(row: list[Cell]) -> bool:
    """A row whose only text spans the table (`表1 营养素用量`): read as a caption, not a header."""
    return len(row) >= 2 and len(_distinct([c.text for c in row])) == 1 and any(c.span_left for c in row)


def _header_count(rows: list[list[Cell]]) -> int:
    """One header row, plus sub-header rows under a header cell that spans columns
    (`每日用量` over `最低` | `最高`)."""
    count = 1
    while (
        count < min(_MAX_HEADER_ROWS, len(rows) - 1)
        and any(c.span_left for c in rows[count - 1])
        and any(c.span_above for c in rows[count])
    ):
        count += 1
    return count


def _plain(row: list[Cell]) -> str:
    return CELL_SEPARATOR.join(_distinct([c.text for c in row if not c.span_left]))


def table_lines(grid: list[list[Cell]]) -> list[str]:
    """Marked text lines for a table: caption rows as they are, then one line per data row with
    `header：cell` pairs in column order (empty cells left out; a cell without a header alone).

    A table of one column or one row is a framed box rather than a table: its rows are plain lines.
    A data row whose single text spans columns (a section row `一、维生素类`, a note `注：…`) is
    written without labels."""
    width = max((len(row) for row in grid), default=0)
    rows = [row + [Cell()] * (width - len(row)) for row in grid]
    rows = [row for row in rows if any(c.text for c in row)]
    lines: list[str] = []
    while rows and _is_title_row(rows[0]):
        lines.append(rows.pop(0)[0].text)
    if width < 2 or len(rows) < 2:
        lines += [_plain(row) for row in rows]
        return [mark(line) for line in lines if line]
    n_header = _header_count(rows)
    labels = [
        SUBHEADER_SEPARATOR.join(_distinct([row[col].text.rstrip("：:") for row in rows[:n_header]]))
        for col in range(width)
    ]
    for row in rows[n_header:]:
        values = [
            (labels[col], cell.text) for col, cell in enumerate(row) if cell.text and not cell.span_left
        ]
        if len(values) == 1 and any(c.span_left for c in row):
            lines.append(values[0][1])
            continue
        lines.append(
            CELL_SEPARATOR.join(
                f"{label}{LABEL_SEPARATOR}{value}" if label and label != value else value
                for label, value in values
            )
        )
    return [mark(line) for line in lines if line]
