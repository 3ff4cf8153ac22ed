"""Synthetic meter photos with their truth, for the OCR tests and bench/bench_ocr.py.

A drawn meter: a body on a wall, a brand and a serial number, a dark window with black drums
(white figures: the index) then red drums (the tenths: one for kWh, three for m³, not part of
the index), sometimes the last black drum caught mid-roll (the lower figure is the truth), then
tilt, perspective, blur, noise, lighting and JPEG. Deterministic for a seed: `meter_photo(seed)`.

Also the photos that must give no index: not a meter, too dark, blurred beyond reading.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

BRANDS = ("ITRON", "SAGEMCOM", "LANDIS+GYR", "SENSUS", "ACTARIS", "ELSTER", "ZENNER")


@dataclass(frozen=True)
class MeterPhoto:
    jpeg: bytes
    index: int | None  # the truth: None when no index can be read from it
    digits: int  # black drums
    tenths: int  # red drums
    rolling: bool  # the last black drum is mid-roll

    @property
    def text(self) -> str:
        return "" if self.index is None else f"{self.index:0{self.digits}d}"


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # ships with Pillow: no system font needed


def _drum(figure: int, w: int, h: int, colour: tuple[int, int, int], roll: float, rng: random.Random) -> Image.Image:
    """One drum window: the figure centred; with `roll`, the figure moved up by that fraction of
    the pitch and the next one coming in from below."""
    drum = Image.new("RGB", (w, h), colour)
    d = ImageDraw.Draw(drum)
    font = _font(int(h * rng.uniform(0.68, 0.8)))
    pitch = h * 1.05
    ink = (rng.randint(225, 255),) * 3
    for k, fig in ((0, figure), (1, (figure + 1) % 10)):
        y = h / 2 + (k - roll) * pitch
        if -h < y < 2 * h:
            d.text((w / 2, y), str(fig), fill=ink, font=font, anchor="mm")
    # the drum's curvature: darker top and bottom
    shade = Image.new("L", (1, h))
    for y in range(h):
        shade.putpixel((0, y), int(255 * (1 - 0.55 * abs(y / h - 0.5) * 2) ** 1.2))
    black = Image.new("RGB", (w, h), (0, 0, 0))
    return Image.composite(drum, black, shade.resize((w, h)))


def _counter(rng: random.Random, index_text: str, tenths: int, roll: float) -> Image.Image:
    n = len(index_text)
    dw = rng.randint(34, 50)
    dh = int(dw * rng.uniform(1.35, 1.6))
    gap = rng.randint(3, 7)
    sep = rng.randint(8, 16)  # between the black and the red drums
    pad = rng.randint(8, 14)
    width = pad * 2 + n * dw + (n - 1) * gap + (sep + tenths * dw + (tenths - 1) * gap if tenths else 0)
    height = dh + pad * 2
    frame = Image.new("RGB", (width, height), tuple(rng.randint(15, 45) for _ in range(3)))
    x = pad
    black = (rng.randint(10, 30),) * 3
    for i, ch in enumerate(index_text):
        r = roll if i == n - 1 else 0.0
        frame.paste(_drum(int(ch), dw, dh, black, r, rng), (x, pad))
        x += dw + gap
    if tenths:
        x += sep - gap
        red = (rng.randint(170, 215), rng.randint(10, 40), rng.randint(15, 45))
        for _ in range(tenths):
            frame.paste(_drum(rng.randint(0, 9), dw, dh, red, 0.0, rng), (x, pad))
            x += dw + gap
    return frame


def _wall(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    base = tuple(rng.randint(90, 200) for _ in range(3))
    img = Image.new("RGB", size, base)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(0, 6)):  # pipes, cables, stains
        x0, y0 = rng.randint(0, size[0]), rng.randint(0, size[1])
        d.line(
            (x0, y0, x0 + rng.randint(-400, 400), y0 + rng.randint(-400, 400)),
            fill=tuple(rng.randint(40, 220) for _ in range(3)),
            width=rng.randint(3, 25),
        )
    return img


def _finish(rng: random.Random, img: Image.Image, *, blur: float | None = None, light: float | None = None) -> bytes:
    """Tilt, perspective, lighting, blur, noise, size and JPEG: what a phone adds."""
    img = img.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(110, 110, 110))
    w, h = img.size
    k = 0.04
    quad = [rng.uniform(0, k * w) if i % 2 == 0 else rng.uniform(0, k * h) for i in range(8)]
    quad = [quad[0], quad[1], quad[2], h - quad[3], w - quad[4], h - quad[5], w - quad[6], quad[7]]
    img = img.transform((w, h), Image.Transform.QUAD, quad, resample=Image.Resampling.BICUBIC)
    img = ImageEnhance.Brightness(img).enhance(light if light is not None else rng.uniform(0.7, 1.25))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.8, 1.15))
    # uneven light: a soft bright spot (glare) or a shadow side
    mask = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize((w, h))
    tint = Image.new("RGB", (w, h), (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0))
    img = Image.composite(tint, img, mask.point(lambda v: int(v * rng.uniform(0.0, 0.25))))
    img = img.filter(ImageFilter.GaussianBlur(blur if blur is not None else rng.uniform(0.0, 1.3)))
    noise = Image.frombytes("L", (w, h), rng.randbytes(w * h)).convert("RGB")
    img = Image.blend(img, noise, rng.uniform(0.03, 0.12))
    target = rng.randint(640, 1024)
    img = img.resize((target, int(h * target / w)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=rng.randint(45, 90))
    return out.getvalue()


def meter_photo(
    seed: int,
    *,
    digits: int | None = None,
    index: int | None = None,
    tenths: int | None = None,
    roll: float | None = None,
    blur: float | None = None,
    light: float | None = None,
) -> MeterPhoto:
    """The photo of a meter for `seed` (anything not given is drawn from it)."""
    rng = random.Random(seed)
    digits = digits if digits is not None else rng.randint(4, 8)
    if index is None:
        index = rng.randint(0, 10**digits - 1) if rng.random() < 0.7 else rng.randint(0, 10 ** (digits - 1))
    tenths = tenths if tenths is not None else rng.choice((1, 3))
    if roll is None:
        roll = rng.uniform(0.15, 0.35) if rng.random() < 0.15 else 0.0
    text = f"{index:0{digits}d}"
    counter = _counter(rng, text, tenths, roll)
    cw, ch = counter.size
    bw, bh = int(cw * rng.uniform(1.25, 1.6)), int(ch * rng.uniform(3.2, 4.5))
    body = Image.new("RGB", (bw, bh), tuple(rng.randint(170, 235) for _ in range(3)))
    d = ImageDraw.Draw(body)
    d.rectangle((2, 2, bw - 3, bh - 3), outline=(60, 60, 60), width=3)
    cx, cy = (bw - cw) // 2, int(bh * rng.uniform(0.3, 0.42))
    body.paste(counter, (cx, cy))
    small = _font(max(12, ch // 5))
    d.text((cx, cy - ch // 2), rng.choice(BRANDS), fill=(30, 30, 90), font=_font(max(14, ch // 3)), anchor="ls")
    d.text((cx + cw + 6, cy + ch // 2), "kWh" if tenths == 1 else "m3", fill=(20, 20, 20), font=small, anchor="lm")
    serial = f"N° {rng.randint(10**7, 10**9 - 1)}"
    d.text((cx, cy + ch + ch // 2), serial, fill=(40, 40, 40), font=small, anchor="la")
    d.text((cx, cy + ch + ch), f"{rng.choice((5, 10, 15))}(60)A 230V 50Hz", fill=(40, 40, 40), font=small, anchor="la")
    scale = rng.uniform(1.3, 1.9)
    wall = _wall(rng, (int(bw * scale), int(bh * scale * rng.uniform(0.75, 1.0))))
    wall.paste(body, ((wall.width - bw) // 2 + rng.randint(-20, 20), (wall.height - bh) // 2 + rng.randint(-20, 20)))
    return MeterPhoto(_finish(rng, wall, blur=blur, light=light), index, digits, tenths, roll > 0)


def not_a_meter(seed: int) -> bytes:
    """A photo with no counter in it: a wall, shapes and a line of words."""
    rng = random.Random(seed)
    img = _wall(rng, (900, 700))
    d = ImageDraw.Draw(img)
    for _ in range(8):
        x, y = rng.randint(0, 800), rng.randint(0, 600)
        d.ellipse(
            (x, y, x + rng.randint(30, 200), y + rng.randint(30, 200)),
            fill=tuple(rng.randint(0, 255) for _ in range(3)),
        )
    d.text((60, 320), "Bonjour, voici ma facture", fill=(10, 10, 10), font=_font(44))
    return _finish(rng, img)


def too_dark(seed: int, digits: int = 5) -> MeterPhoto:
    p = meter_photo(seed, digits=digits, light=0.04)
    return MeterPhoto(p.jpeg, None, p.digits, p.tenths, p.rolling)


def too_blurred(seed: int, digits: int = 5) -> MeterPhoto:
    p = meter_photo(seed, digits=digits, blur=9.0)
    return MeterPhoto(p.jpeg, None, p.digits, p.tenths, p.rolling)


def main() -> None:  # python -m tests.meter_photos OUTDIR [N]: look at some
    import sys
    from pathlib import Path

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(int(sys.argv[2]) if len(sys.argv) > 2 else 6):
        p = meter_photo(seed)
        (out / f"{seed:03d}_{p.text}_r{int(p.rolling)}.jpg").write_bytes(p.jpeg)


if __name__ == "__main__":
    main()
