"""The export's bundle: every file of the export in one zip, built without holding any
of them in memory.

While a data file streams to S3, its bytes are also written to a local spool file
(``/tmp`` in Lambda). Once every file is complete, the spools are read back once: each
file's sha256 is computed and its bytes are deflated (level 1: fast, and training text
still compresses several times) into the zip, which is then uploaded like any file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Final

READ_CHUNK: Final = 1024 * 1024
COMPRESS_LEVEL: Final = 1


@dataclass(slots=True)
class SpooledFile:
    """One data file's bytes as written (without a generic header sent last)."""

    name: str
    # Closed by close(): it outlives the call that opens it.
    spool: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile(prefix="export-"))  # noqa: SIM115
    header: bytes = b""
    size: int = 0

    def write(self, data: bytes) -> None:
        self.spool.write(data)
        self.size += len(data)

    def read_at(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the body from ``offset`` (the write position unmoved)."""
        self.spool.flush()
        data = os.pread(self.spool.fileno(), length, offset)
        if len(data) != min(length, max(self.size - offset, 0)):
            raise OSError(f"short read of the {self.name} spool at {offset}")
        return data

    def chunks(self) -> Iterator[bytes]:
        """The file in order: its header (if any), then its body."""
        if self.header:
            yield self.header
        self.spool.seek(0)
        while chunk := self.spool.read(READ_CHUNK):
            yield chunk

    def close(self) -> None:
        self.spool.close()


class Bundle:
    """A zip assembled in a temporary file; ``add_file`` returns the file's sha256."""

    def __init__(self) -> None:
        self.out = SpooledFile("bundle.zip")
        self.file: IO[bytes] = self.out.spool
        self.zip = zipfile.ZipFile(
            self.file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
        )

    def add_file(self, spooled: SpooledFile) -> str:
        digest = hashlib.sha256()
        with self.zip.open(spooled.name, "w", force_zip64=True) as out:
            for chunk in spooled.chunks():
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()

    def add_text(self, name: str, text: str | bytes) -> None:
        self.zip.writestr(name, text)

    def finish(self) -> SpooledFile:
        """The finished zip (to upload from its spool)."""
        self.zip.close()
        self.file.flush()
        self.out.size = os.fstat(self.file.fileno()).st_size
        return self.out

    def close(self) -> None:
        self.out.close()
