"""Meter photos as evidence (issue 18.7): downloaded only where the reading journey takes a
photo, within a size cap, checked to be a real JPEG, PNG or WebP image, kept content-addressed
(storage/media.py) and tied to the reading by its SHA-256.

The core knows no channel: an adapter hands the engine a `MediaFetcher` for the photos of its
channel (Telegram: getFile then the file; WhatsApp: the Graph API media endpoint then its URL),
and the engine asks it only when the chat is at a step that takes a photo (a `photo=True` state
of conversations/flow.py), before the turn's transaction opens (a download never holds the
database). What the engine got is the turn's `photo` (a `KeptPhoto`): the journey keeps its hash
with the reading it records; a photo refused (too big, not an image, not to be had) is answered
with why and the question again.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from storage import Store
from storage.media import MediaFiles, sha256

if TYPE_CHECKING:
    from .ocr import OcrRead, OcrWorker

log = logging.getLogger(__name__)

FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# Beyond this many pixels an image is refused before it is decoded (a decompression bomb: a few
# KB declaring 100,000 × 100,000 pixels). A phone's photo is 12 to 50 Mpx; Telegram and WhatsApp
# send far fewer.
MAX_PIXELS = 50_000_000
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

Refusal = Literal["too_large", "not_image", "unavailable"]


class MediaError(Exception):
    reason: Refusal = "unavailable"


class TooLarge(MediaError):
    """Declared or found larger than the cap while reading (the download is stopped there)."""

    reason: Refusal = "too_large"


class NotAnImage(MediaError):
    reason: Refusal = "not_image"


class Unavailable(MediaError):
    """The channel would not give the file (expired id, network, an error status)."""

    reason: Refusal = "unavailable"


class MediaFetcher(Protocol):
    """What an adapter gives the engine to download a photo of its channel."""

    async def fetch(self, ref: str, max_bytes: int) -> bytes:
        """The bytes of the channel's file `ref` (a Telegram file id, a WhatsApp media id).
        TooLarge when its declared size or the bytes read exceed `max_bytes` (reading stops
        there); Unavailable when the channel does not give it."""
        ...


@dataclass(frozen=True, slots=True)
class KeptPhoto:
    """A photo the engine fetched for a turn: its hash once kept, or why it was refused."""

    ref: str
    sha256: str | None = None
    refused: Refusal | None = None
    read: OcrRead | None = None  # the index the photo shows (conversations/ocr.py), when it was read


def image_format(data: bytes) -> str:
    """JPEG, PNG or WEBP, or NotAnImage: Pillow reads the header, the pixel count is capped
    before anything is decoded, `verify()` checks the file's structure, then the image is decoded
    (a JPEG at 1/8 scale) so that a truncated or corrupt one is refused too. Runs in a thread."""
    Image, unidentified = _pillow()
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            if fmt not in FORMATS:
                raise NotAnImage(f"format {fmt or 'unknown'}")
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise NotAnImage(f"{width}×{height} pixels")
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            if fmt == "JPEG":
                img.draft("RGB", (max(width // 8, 1), max(height // 8, 1)))
            img.load()
    except NotAnImage:
        raise
    except (unidentified, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise NotAnImage(type(exc).__name__) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise NotAnImage(f"{type(exc).__name__}: {str(exc)[:80]}") from None
    return fmt


@functools.cache
def _pillow():
    """Pillow, imported on the first photo (not at every start), its own bomb check at our cap:
    above it Pillow's warning is an error (set once, process-wide: `warnings.catch_warnings` is
    not thread-safe, and the checks run in threads), twice above it Pillow refuses by itself."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    return Image, UnidentifiedImageError


class MediaKeeper:
    """Fetches, checks and keeps photos for the engine (one process's media folder and cap)."""

    def __init__(
        self,
        files: MediaFiles,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        downloads: int = 8,
        checks: int = 2,
        ocr: OcrWorker | None = None,
    ) -> None:
        self.files, self.max_bytes = files, max_bytes
        self.ocr = ocr  # reads the index from a kept photo (ADDAD_OCR), in its own process
        # Memory stays bounded whatever the number of chats at a photo step: at most `downloads`
        # files of at most `max_bytes` in hand, `checks` of them decoded at a time.
        self._fetching = asyncio.Semaphore(downloads)
        self._checking = asyncio.Semaphore(checks)

    @property
    def max_mb(self) -> int:
        return max(1, round(self.max_bytes / (1024 * 1024)))

    async def keep(
        self, fetcher: MediaFetcher, ref: str, store: Store, now: datetime, *, digits: int | None = None
    ) -> KeptPhoto:
        """The photo fetched, checked and kept; with `digits` (the meter's dial count) and a
        reader, the index it shows read too, outside the event loop."""
        async with self._fetching:
            try:
                data = await fetcher.fetch(ref, self.max_bytes)
                if len(data) > self.max_bytes:
                    raise TooLarge(f"{len(data)} bytes")
                async with self._checking:
                    fmt = await asyncio.to_thread(image_format, data)
            except MediaError as exc:
                log.info("meter photo refused (%s: %s)", exc.reason, exc)
                return KeptPhoto(ref, refused=exc.reason)
            except Exception as exc:
                log.warning("meter photo not downloaded (%s)", type(exc).__name__)
                return KeptPhoto(ref, refused="unavailable")
            digest = sha256(data)
            try:
                # The row first: a file on disk always has one (the pruning finds it), even after a crash.
                async with store.transaction() as tx:
                    await tx.keep_media(digest, size=len(data), format=fmt, now=now)
                await asyncio.to_thread(self.files.put, data)
            except Exception as exc:  # a full disk, a database that cannot be written
                log.error("meter photo could not be kept (%s: %s)", type(exc).__name__, exc)
                return KeptPhoto(ref, refused="unavailable")
        if self.ocr is not None and digits is not None:
            # (outside the download slots: a photo being read holds no download back)
            return KeptPhoto(ref, sha256=digest, read=await self.ocr.read(data, digits))
        return KeptPhoto(ref, sha256=digest)
