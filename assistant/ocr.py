"""Text recognition for scanned pages and photos: RapidOCR (PP-OCRv6, models inside the `rapidocr`
wheel, run by onnxruntime), lines put into reading order. Loaded once per process, on first use.

The recognizer returns one box per stretch of text; boxes side by side on one visual row (table
cells, a heading number and its title) become one text line. A run of rows that are split into
aligned columns is read as a table: its data rows become `header：cell` lines (`tables.table_lines`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from assistant.tables import Cell, table_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    score: float


@dataclass(frozen=True)
class OcrPage:
    lines: tuple[OcrLine, ...]  # in reading order
    width: int
    height: int

    @property
    def text(self) -> str:
        """One line per visual row (see `rows_text`)."""
        return rows_text(self.lines)

    @property
    def confidence(self) -> float:
        """Mean recognition score, weighted by characters (0 for a page without text)."""
        chars = sum(len(line.text) for line in self.lines)
        return sum(line.score * len(line.text) for line in self.lines) / chars if chars else 0.0


def reading_order(lines: list[OcrLine], width: int) -> list[OcrLine]:
    """Columns left to right, each top to bottom; lines of one row left to right.

    A page has two columns when a vertical gutter near the middle separates the boxes of most lines;
    a line spanning the gutter (a title, a footer) is read in its place between the column blocks.
    A gap between a table's columns is not a gutter: a side whose rows hold several boxes, or whose
    lines are mostly narrow (a label column), keeps the page read row by row."""
    if not lines:
        return []
    candidates = range(int(width * 0.3), int(width * 0.7), max(width // 100, 1))
    crossing = {x: sum(1 for line in lines if line.box[0] < x < line.box[2]) for x in candidates}
    if not crossing:
        return _rows(lines)
    gutter = min(crossing, key=lambda x: (crossing[x], abs(x - width / 2)))
    left = [line for line in lines if line.box[2] <= gutter]
    right = [line for line in lines if line.box[0] >= gutter]
    if len(left) < 3 or len(right) < 3 or crossing[gutter] > 0.25 * len(lines):
        return _rows(lines)
    if _tabular(left) or _tabular(right) or min(_median_width(left), _median_width(right)) < 0.25 * width:
        return _rows(lines)  # a table with a gap between its columns, not a two-column page
    spanning = sorted((line for line in lines if line.box[0] < gutter < line.box[2]), key=_centre)
    ordered: list[OcrLine] = []
    top = float("-inf")
    for divider in [*spanning, None]:
        bottom = _centre(divider) if divider else float("inf")
        for column in (left, right):
            ordered += _rows([line for line in column if top <= _centre(line) < bottom])
        if divider:
            ordered.append(divider)
        top = bottom
    return ordered


def _centre(line: OcrLine) -> float:
    return (line.box[1] + line.box[3]) / 2


def _same_row(first: OcrLine, line: OcrLine) -> bool:
    """`line` lies on the row that `first` starts: vertical centres within half `first`'s height."""
    return abs(_centre(line) - _centre(first)) < (first.box[3] - first.box[1]) / 2


def _row_groups(lines: list[OcrLine]) -> list[list[OcrLine]]:
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=_centre):
        if rows and _same_row(rows[-1][0], line):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [sorted(row, key=lambda line: line.box[0]) for row in rows]


def _rows(lines: list[OcrLine]) -> list[OcrLine]:
    """Top to bottom; boxes whose vertical centres lie within half a line height count as one row."""
    return [line for row in _row_groups(lines) for line in row]


def _median_width(lines: list[OcrLine]) -> float:
    """Lines of a text column mostly fill it; the cells of a table's label column are narrow."""
    widths = sorted(line.box[2] - line.box[0] for line in lines)
    return widths[len(widths) // 2]


def _tabular(lines: list[OcrLine]) -> bool:
    """Most rows of these lines hold several boxes: a column of text has one box a row."""
    rows = _row_groups(lines)
    return sum(1 for row in rows if len(row) >= 2) > 0.25 * len(rows)


_MIN_TABLE_ROWS = 3  # a header and two data rows: fewer is too little evidence of a table


def _visual_rows(lines: tuple[OcrLine, ...]) -> list[list[OcrLine]]:
    """Lines in reading order, grouped back into rows: a line continues the current row when it is
    on the row's height and to the right of the row's last box (a new column starts a new row)."""
    rows: list[list[OcrLine]] = []
    for line in lines:
        if rows and _same_row(rows[-1][0], line) and line.box[0] >= rows[-1][-1].box[0]:
            rows[-1].append(line)
        else:
            rows.append([line])
    return rows


def _table_grid(rows: list[list[OcrLine]]) -> list[list[Cell]] | None:
    """A run of multi-box rows as a grid, or None when its boxes do not fall into columns.

    Columns are the bands where boxes overlap horizontally (cells of one column overlap, whether
    their text is left-aligned, centred or right-aligned); each row must put at most one box in a
    band. An empty cell is simply a band without a box."""
    spans = sorted((line.box[0], line.box[2]) for row in rows for line in row)
    bands: list[list[float]] = []
    for x0, x1 in spans:
        if bands and x0 < bands[-1][1]:
            bands[-1][1] = max(bands[-1][1], x1)
        else:
            bands.append([x0, x1])
    if len(bands) < 2:
        return None
    grid: list[list[Cell]] = []
    for row in rows:
        cells = [Cell() for _ in bands]
        for line in row:
            band = max(i for i, (x0, _) in enumerate(bands) if x0 <= line.box[0])
            if cells[band].text:
                return None
            cells[band] = Cell(line.text)
        grid.append(cells)
    return grid


_HEADING_BOX = re.compile(r"^第[一二三四五六七八九十百千零〇两\d]+[编章节条]$")
_MAX_CELL_CHARS = 24  # a box longer than this is a line of body text (a wrapped cell spans rows)


def _table_row(row: list[OcrLine]) -> bool:
    """A row that may belong to a table: several boxes, all short, none a legal heading — "第一条"
    or "第一章" recognised apart from the text after it is a heading, not a label column."""
    return (
        len(row) >= 2
        and all(len(line.text) <= _MAX_CELL_CHARS for line in row)
        and not _HEADING_BOX.match(row[0].text)
    )


def rows_text(lines: tuple[OcrLine, ...]) -> str:
    """Recognised lines as text: each visual row one line. A run of at least three rows of two or
    more boxes that fall into aligned columns is a table (`table_lines`: marked `header：cell`
    lines); other rows join their boxes with a space (the normalizer drops it between Chinese
    characters), so a normal paragraph, one box a row, reads exactly as recognised."""
    rows = _visual_rows(lines)
    out: list[str] = []
    i = 0
    while i < len(rows):
        end = i
        while end < len(rows) and _table_row(rows[end]):
            end += 1
        grid = _table_grid(rows[i:end]) if end - i >= _MIN_TABLE_ROWS else None
        if grid is not None:
            out += table_lines(grid)
            i = end
            continue
        for row in rows[i : max(end, i + 1)]:
            out.append(" ".join(line.text for line in row))
        i = max(end, i + 1)
    return "\n".join(out)


class OcrEngine:
    """One RapidOCR instance; calls are serialised (onnxruntime already uses every core)."""

    def __init__(self) -> None:
        from rapidocr import RapidOCR

        # Text orientation classification off: pages are upright or slightly rotated, which the
        # detector handles; it cost a third of the time on this machine.
        self._ocr: Any = RapidOCR(params={"Global.use_cls": False, "Global.log_level": "warning"})
        self._lock = threading.Lock()

    def recognize(self, image: Any) -> OcrPage:
        """Lines of text of a PIL image, in reading order, with boxes and scores."""
        with self._lock:
            result = self._ocr(image.convert("RGB"))
        lines = []
        if result.boxes is None or result.txts is None:  # nothing detected
            return OcrPage((), image.width, image.height)
        for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            xs = [float(p[0]) for p in box]
            ys = [float(p[1]) for p in box]
            if text.strip():
                lines.append(OcrLine(text.strip(), (min(xs), min(ys), max(xs), max(ys)), float(score)))
        return OcrPage(tuple(reading_order(lines, image.width)), image.width, image.height)


class OcrCache:
    """Recognised pages on disk, keyed by the file's content hash, the page and the resolution: the
    page preview draws its highlight boxes from them without recognising again, and re-indexing an
    unchanged scan costs nothing. A pure function of the file's bytes, so never stale."""

    VERSION = 1  # bump when the engine or its settings change what a page recognises as

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, content_hash: str, page: int, dpi: int) -> Path:
        return self.folder / content_hash[:2] / f"{content_hash}-p{page}-{dpi}-v{self.VERSION}.json"

    def get(self, content_hash: str, page: int, dpi: int) -> OcrPage | None:
        try:
            data = json.loads(self._path(content_hash, page, dpi).read_text(encoding="utf-8"))
            lines = tuple(OcrLine(text, (box[0], box[1], box[2], box[3]), score) for text, box, score in data["lines"])
            return OcrPage(lines, int(data["width"]), int(data["height"]))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def recognise(self, content_hash: str, page: int, dpi: int, image: Callable[[], Any]) -> OcrPage:
        """The cached recognition of the page, or `image()` recognised now and cached."""
        recognised = self.get(content_hash, page, dpi)
        if recognised is None:
            recognised = ocr_engine().recognize(image())
            self.put(content_hash, page, dpi, recognised)
        return recognised

    def put(self, content_hash: str, page: int, dpi: int, recognised: OcrPage) -> None:
        path = self._path(content_hash, page, dpi)
        data = {
            "width": recognised.width,
            "height": recognised.height,
            "lines": [[line.text, list(line.box), line.score] for line in recognised.lines],
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            partial.replace(path)  # whole or absent, even if the worker is killed mid-write
        except OSError as err:  # a read-only data folder costs a re-recognition, nothing else
            log.warning("OCR cache not written: %s", err)


@lru_cache(maxsize=1)
def ocr_engine() -> OcrEngine:
    log.info("loading the OCR models")
    return OcrEngine()
