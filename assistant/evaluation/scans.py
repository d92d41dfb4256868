"""Scanned twins of real PDFs: each page rendered to an image, given realistic scan noise (grey
paper, sensor noise, a slight rotation, JPEG compression) and reassembled into a PDF without a text
layer. Reproducible from a seed; used by `eval ocr` and the OCR tests."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

from assistant.loaders import render_pdf_page

SCAN_DPI = 200  # what an office scanner's "document" setting produces


def scanned_look(image: Any, rng: random.Random) -> Any:
    """A clean page image → the same page as a scanner or copier returns it (greyscale PIL image)."""
    import numpy as np
    from PIL import Image, ImageFilter

    grey = image.convert("L")
    grey = grey.rotate(rng.uniform(-1.2, 1.2), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    grey = grey.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 0.7)))
    pixels = np.asarray(grey, dtype=np.float64)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0.0, rng.uniform(6.0, 12.0), pixels.shape)
    paper = rng.uniform(225, 245)  # off-white paper, not pure white
    pixels = pixels * (paper / 255.0) + noise
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    noisy.save(buffer, format="JPEG", quality=rng.randint(50, 70))
    return Image.open(io.BytesIO(buffer.getvalue()))


def render_pages(pdf: Path, pages: list[int] | None = None, dpi: int = SCAN_DPI) -> list[Any]:
    """PIL images of `pages` (1-based; all by default) of a PDF."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(pdf))
    try:
        numbers = pages or list(range(1, len(document) + 1))
        return [render_pdf_page(document[n - 1], dpi / 72) for n in numbers]
    finally:
        document.close()


def scanned_twin(source: Path, target: Path, pages: list[int] | None = None, seed: int = 1203) -> Path:
    """`target`: a PDF of scanned-looking images of `source`'s pages, with no text layer."""
    rng = random.Random(f"{seed}:{source.name}")
    images = [scanned_look(image, rng) for image in render_pages(source, pages)]
    images[0].save(target, format="PDF", save_all=True, append_images=images[1:], resolution=SCAN_DPI)
    return target
