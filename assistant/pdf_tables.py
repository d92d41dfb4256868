"""Ruled tables on PDF pages with a text layer, kept as rows.

pypdf reads a table cell by cell in drawing order, so a row's cells end up on separate lines and a
wrapped cell interleaves with its neighbours. Pages that carry a ruled table get their text rebuilt:
pdfplumber finds the table grid from the ruling lines, pdfium supplies the text (of each cell, and
of the rest of the page in content order), and the table's characters are replaced, where the table
starts, by its row lines (`tables.table_lines`).

Cost, in three steps so that a page without a table costs next to nothing: the page's content
stream, already decoded by pypdf, is scanned for path operators (`may_draw_table`); only a page
with some, or with form XObjects that could hold them, is loaded by pdfium to count its path
segments; only a page with enough segments to draw a table (`_MIN_SEGMENTS`) is parsed by
pdfplumber. Every page that does not get a table keeps pypdf's text exactly. pdfium's text is used rather than pdfplumber's because pdfminer reads
no characters at all from some embedded CJK fonts that pypdf and pdfium read fine.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from assistant.tables import Cell, cell_text, table_lines

log = logging.getLogger(__name__)

# A 2 × 2 grid drawn as separate lines or rectangles has 12 to 20 segments; a rule under a letterhead
# (the bundled PDFs' first pages: two paths of 6) does not reach this.
_MIN_SEGMENTS = 16
# pdfium's text of a page must hold nearly as many letters and digits as pypdf's, or the page is left alone.
_MIN_TEXT_RATIO = 0.8


# `x y w h re` (a rectangle) or `x y l` (a line segment) in a content stream.
_PATH_OP = re.compile(rb"\d\s+(?:re|l)\b")
_MIN_PATH_OPS = 4
# A vector drawing (a map, a chart) rather than a table: pdfplumber's grid search would take long.
_MAX_PATH_OPS = 10_000


def may_draw_table(page: Any, content: bytes) -> bool:
    """A cheap first look at a pypdf page: a few rectangles or lines in its content stream (but not
    a drawing of thousands), or a form XObject (whose drawing this does not read). A page it
    rejects is not searched for a table."""
    ops = len(_PATH_OP.findall(content))
    if ops > _MAX_PATH_OPS:
        return False
    if ops >= _MIN_PATH_OPS:
        return True
    try:
        xobjects = page["/Resources"].get_object().get("/XObject")
        if xobjects is None:
            return False
        return any(x.get_object().get("/Subtype") == "/Form" for x in xobjects.get_object().values())
    except Exception:  # an odd resource dictionary: let pdfium look
        return True


def _ruled_pages(document: Any, numbers: list[int]) -> list[int]:
    """The pages among `numbers` (1-based) that are upright and have enough path segments for a table."""
    import pypdfium2.raw as pdfium_c

    found = []
    for number in numbers:
        page = document[number - 1]
        if page.get_rotation() != 0:
            continue  # pdfplumber and pdfium disagree on rotated coordinates: keep pypdf's text
        segments = 0
        for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_PATH,)):
            segments += max(pdfium_c.FPDFPath_CountSegments(obj.raw), 0)
            if segments >= _MIN_SEGMENTS:
                found.append(number)
                break
    return found


def _grid(table: Any, text_of: Any) -> list[list[Cell]]:
    """A pdfplumber table as a grid of `Cell`s. A position no cell starts at is covered by a merged
    cell: found by its centre, it is `span_left` of a cell starting in the same row, else `span_above`."""
    rows = table.rows
    n_cols = max(len(row.cells) for row in rows)
    real = [
        (r, c, bbox) for r, row in enumerate(rows) for c, bbox in enumerate(row.cells) if bbox is not None
    ]
    texts = {(r, c): cell_text(text_of(bbox)) for r, c, bbox in real}
    # A row's own height and a column's own width are those of its smallest cell.
    row_band = [(min(b[1] for b in row.cells if b), min(b[3] for b in row.cells if b)) for row in rows]
    col_x0: list[float] = []
    col_x1: list[float] = []
    for c in range(n_cols):
        starting = [bbox for _, cc, bbox in real if cc == c]
        col_x0.append(min(b[0] for b in starting) if starting else 0.0)
        col_x1.append(min(b[2] for b in starting) if starting else 0.0)
    grid: list[list[Cell]] = []
    for r, row in enumerate(rows):
        cells: list[Cell] = []
        for c in range(n_cols):
            if c < len(row.cells) and row.cells[c] is not None:
                cells.append(Cell(texts[(r, c)]))
                continue
            x, y = (col_x0[c] + col_x1[c]) / 2, (row_band[r][0] + row_band[r][1]) / 2
            owner = next(((rr, cc) for rr, cc, b in real if b[0] < x < b[2] and b[1] < y < b[3]), None)
            if owner is None:
                cells.append(Cell())
            else:
                cells.append(Cell(texts[owner], span_left=owner[0] == r, span_above=owner[0] != r))
        grid.append(cells)
    return grid


def _page_text(plumber_page: Any, pdfium_page: Any, min_chars: int) -> str | None:
    """The page's text with each ruled table (at least 2 × 2) as row lines, or None to keep pypdf's."""
    import pypdfium2.raw as pdfium_c

    tables = [
        t for t in plumber_page.find_tables() if len(t.rows) >= 2 and max(len(r.cells) for r in t.rows) >= 2
    ]
    if not tables:
        return None
    textpage = pdfium_page.get_textpage()
    try:
        count = textpage.count_chars()
        chars = [chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i)) for i in range(count)]
        if sum(1 for ch in chars if ch.isalnum()) < min_chars:
            return None  # pdfium cannot read this page's fonts as well as pypdf: keep pypdf's text
        # pdfplumber measures `top` down from the top of the page, pdfium's y goes up from the bottom.
        height = float(plumber_page.height)

        def text_of(bbox: tuple[float, float, float, float]) -> str:
            x0, y0, x1, y1 = bbox
            return str(textpage.get_text_bounded(left=x0, bottom=height - y1, right=x1, top=height - y0))

        blocks = [table_lines(_grid(table, text_of)) for table in tables]
        boxes = [(t.bbox[0], height - t.bbox[3], t.bbox[2], height - t.bbox[1]) for t in tables]
        out: list[str] = []
        placed: set[int] = set()
        for i, ch in enumerate(chars):
            x0, y0, x1, y1 = textpage.get_charbox(i)
            x, y = (x0 + x1) / 2, (y0 + y1) / 2
            inside = next((k for k, b in enumerate(boxes) if b[0] <= x <= b[2] and b[1] <= y <= b[3]), None)
            if inside is None:
                out.append(ch)
            elif inside not in placed:
                placed.add(inside)
                out.append("\n" + "\n".join(blocks[inside]) + "\n")
        for k, block in enumerate(blocks):  # a table no character was found in (an empty grid)
            if k not in placed and block:
                out.append("\n" + "\n".join(block))
    finally:
        textpage.close()
    return "".join(out).replace("\r\n", "\n").replace("\r", "\n")


def pdf_table_texts(data: bytes, pages: dict[int, str]) -> dict[int, str]:
    """New text for the pages (number → pypdf text) that carry a ruled table; the others are not in
    the result. A page that cannot be read this way keeps its pypdf text: tables are an improvement,
    never a reason to fail a document."""
    import pypdfium2 as pdfium

    if not pages:
        return {}
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return {}
    result: dict[int, str] = {}
    try:
        candidates = _ruled_pages(document, sorted(pages))
        if not candidates:
            return {}
        import pdfplumber  # only now: its import alone costs more than the page scan

        with pdfplumber.open(io.BytesIO(data)) as plumber:
            for number in candidates:
                min_chars = int(_MIN_TEXT_RATIO * sum(1 for ch in pages[number] if ch.isalnum()))
                try:
                    plumber_page = plumber.pages[number - 1]
                    text = _page_text(plumber_page, document[number - 1], min_chars)
                    plumber_page.close()
                except MemoryError:
                    raise
                except Exception as err:  # pdfminer and pdfium raise many types on odd pages
                    log.warning("table extraction failed on page %d: %s: %s", number, type(err).__name__, err)
                    continue
                if text is not None:
                    result[number] = text
    except MemoryError:
        raise
    except Exception as err:  # pdfplumber could not open the document: every page keeps pypdf's text
        log.warning("table extraction skipped: %s: %s", type(err).__name__, err)
    finally:
        document.close()
    return result
