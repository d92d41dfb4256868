"""Text recognition for scanned pages and photos: RapidOCR (PP-OCRv6, models inside the `rapidocr`
wheel, run by onnxruntime), lines put into reading order. Loaded once per process, on first use."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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
        return "\n".join(line.text for line in self.lines)

    @property
    def confidence(self) -> float:
        """Mean recognition score, weighted by characters (0 for a page without text)."""
        chars = sum(len(line.text) for line in self.lines)
        return sum(line.score * len(line.text) for line in self.lines) / chars if chars else 0.0


def reading_order(lines: list[OcrLine], width: int) -> list[OcrLine]:
    """Columns left to right, each top to bottom; lines of one row left to right.

    A page has two columns when a vertical gutter near the middle separates the boxes of most lines
    (a line spanning the gutter, like a title, is read before the columns that follow it)."""
    if not lines:
        return []
    middle = [x for x in range(int(width * 0.3), int(width * 0.7), max(width // 100, 1))]
    crossing = {x: sum(1 for line in lines if line.box[0] < x < line.box[2]) for x in middle}
    gutter = min(crossing, key=lambda x: (crossing[x], abs(x - width / 2))) if crossing else None
    left = [line for line in lines if gutter is not None and line.box[2] <= gutter]
    right = [line for line in lines if gutter is not None and line.box[0] >= gutter]
    if gutter is None or len(left) < 3 or len(right) < 3 or crossing[gutter] > 0.1 * len(lines):
        return _rows(lines)
    spanning = [line for line in lines if line not in left and line not in right]
    return _rows(spanning) + _rows(left) + _rows(right) if spanning else _rows(left) + _rows(right)


def _rows(lines: list[OcrLine]) -> list[OcrLine]:
    """Top to bottom; boxes whose vertical centres lie within half a line height count as one row."""
    ordered = sorted(lines, key=lambda line: (line.box[1] + line.box[3]) / 2)
    rows: list[list[OcrLine]] = []
    for line in ordered:
        centre = (line.box[1] + line.box[3]) / 2
        if rows:
            last = rows[-1][0]
            height = last.box[3] - last.box[1]
            if abs(centre - (last.box[1] + last.box[3]) / 2) < height / 2:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda line: line.box[0])]


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


@lru_cache(maxsize=1)
def ocr_engine() -> OcrEngine:
    log.info("loading the OCR models")
    return OcrEngine()
