"""Text recognition for scanned pages and photos: RapidOCR (PP-OCRv6, models inside the `rapidocr`
wheel, run by onnxruntime), lines put into reading order. Loaded once per process, on first use."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
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
