"""Meter photos on disk, content-addressed: `ROOT/ab/abcdef…` is the file whose SHA-256 is
`abcdef…` (`ADDAD_MEDIA_DIR`, by default `media/` beside a SQLite database).

Only the bot's user may read them: folders 0700, files 0600, whatever the umask. A file is
written under a temporary name, fsynced, then renamed, so a name always holds the whole photo;
the same bytes sent twice are one file. Nothing outside the process is ever given a path: the
hash is on the reading (for the back office and the export), never in a reply.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MediaFiles:
    """The content-addressed folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        if not _SHA256.fullmatch(digest):
            raise ValueError(f"not a SHA-256: {digest[:80]!r}")
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Keep `data` (durably, once) and return its SHA-256."""
        digest = sha256(data)
        target = self.path(digest)
        if target.exists() and target.stat().st_size == len(data):
            return digest
        for folder in (self.root, target.parent):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        temp = target.with_name(f".{digest}.{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        _fsync_dir(target.parent)
        return digest

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
