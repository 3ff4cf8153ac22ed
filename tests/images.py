"""Real images for the photo tests (made with Pillow, as a phone's camera would send them)."""

from __future__ import annotations

import io
from functools import lru_cache


@lru_cache(maxsize=32)
def image(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    from PIL import Image

    img = Image.new("RGB", size, (40 + seed % 200, 90, 160))
    for x in range(0, size[0], 7):
        img.putpixel((x, (x * 3 + seed) % size[1]), (255, 255, 255))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def jpeg(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    return image("JPEG", size, seed)
