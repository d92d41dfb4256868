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

    A page has two columns when a vertical gutter near the middle separates the boxes of most lines;
    a line spanning the gutter (a title, a footer) is read in its place between the column blocks."""
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


def _rows(lines: list[OcrLine]) -> list[OcrLine]:
    """Top to bottom; boxes whose vertical centres lie within half a line height count as one row."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=_centre):
        if rows:
            last = rows[-1][0]
            if abs(_centre(line) - _centre(last)) < (last.box[3] - last.box[1]) / 2:
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
