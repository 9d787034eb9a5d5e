"""A reader for Enlightenment's Eet files (``.edj`` themes and backgrounds), enough to get images out.

Debian ``enlightenment-data`` ships its photo backgrounds as ``.edj`` files: Eet containers
whose ``edje/images/N`` entries hold the pictures, often the same photo at several sizes. Layout
of an Eet file (format 2, integers big-endian): the magic ``0x1ee70f42``, the number of
directory entries and of dictionary entries, then per entry six integers (data offset, stored
size, unpacked size, name offset, name size with its NUL, flags: bit 0 compressed, bit 1
ciphered, bit 2 alias, bits 3-10 the compression type, 0 = zlib). An image entry is either a
plain JPEG (lossy entries are stored as is) or a lossless one: eight little-endian integers
(``0xac1dfeed``, width, height, alpha, compression, 0, 0, 0) followed by ARGB32 pixels (zlib
when compression is non-zero). Ciphered entries and other codecs (ETC, lz4) are reported, not
decoded.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib

import numpy as np
from PIL import Image

from walloc_cli.data.rcc import inflate
from walloc_cli.errors import InputError

MAGIC = 0x1EE70F42
LOSSLESS_MAGIC = 0xAC1DFEED
FLAG_COMPRESSED = 0x1
FLAG_CIPHERED = 0x2
FLAG_ALIAS = 0x4
MAX_ENTRY_BYTES = 512 << 20  # a corrupt size must not exhaust memory


@dataclasses.dataclass(frozen=True)
class EetEntry:
    """One directory entry: its name and where its stored bytes lie."""

    name: str
    offset: int
    size: int
    data_size: int
    flags: int

    @property
    def compression_type(self) -> int:
        return (self.flags >> 3) & 0xFF


class EetFile:
    """A parsed Eet file held in memory; :meth:`entries` lists the directory, :meth:`read` unpacks one."""

    def __init__(self, blob: bytes, name: str = "eet") -> None:
        self.blob = blob
        self.name = name
        if len(blob) < 12 or struct.unpack_from(">I", blob)[0] != MAGIC:
            raise InputError(f"{name}: not an Eet file (no 0x1ee70f42 magic)")
        count, _dictionary = struct.unpack_from(">II", blob, 4)
        if 12 + 24 * count > len(blob):
            raise InputError(f"{name}: Eet directory of {count} entries is longer than the file")
        self._entries: list[EetEntry] = []
        for index in range(count):
            offset, size, data_size, name_offset, name_size, flags = struct.unpack_from(">6I", blob, 12 + 24 * index)
            if name_size == 0 or name_offset + name_size > len(blob) or blob[name_offset + name_size - 1] != 0:
                raise InputError(f"{name}: Eet entry {index} has a bad name")
            if offset + size > len(blob):
                raise InputError(f"{name}: Eet entry {index} runs past the end of the file")
            entry_name = blob[name_offset : name_offset + name_size - 1].decode("utf-8", errors="replace")
            self._entries.append(EetEntry(entry_name, offset, size, data_size, flags))

    def entries(self) -> list[EetEntry]:
        """The directory, in file order."""
        return list(self._entries)

    def read(self, entry: EetEntry) -> bytes:
        """The entry's bytes, unpacked (zlib) when stored compressed."""
        stored = self.blob[entry.offset : entry.offset + entry.size]
        if entry.flags & FLAG_CIPHERED:
            raise InputError(f"{self.name}: {entry.name}: ciphered entry")
        if entry.flags & FLAG_ALIAS:
            raise InputError(f"{self.name}: {entry.name}: alias entry (holds another entry's name)")
        if not entry.flags & FLAG_COMPRESSED:
            return stored
        if entry.compression_type != 0:
            raise InputError(f"{self.name}: {entry.name}: compression type {entry.compression_type} (only zlib is read)")
        if entry.data_size > MAX_ENTRY_BYTES:
            raise InputError(f"{self.name}: {entry.name}: claims {entry.data_size} bytes unpacked")
        try:
            data = inflate(stored, MAX_ENTRY_BYTES)
        except zlib.error as error:
            raise InputError(f"{self.name}: {entry.name}: bad zlib data ({error})") from None
        if len(data) != entry.data_size:
            raise InputError(f"{self.name}: {entry.name}: unpacked {len(data)} bytes, directory says {entry.data_size}")
        return data

    def image(self, entry: EetEntry) -> Image.Image:
        """Decode an ``edje/images/N`` entry: a JPEG, or lossless ARGB32 (RGBA image). Raises :class:`InputError`."""
        data = self.read(entry)
        if data[:2] == b"\xff\xd8":
            image = Image.open(io.BytesIO(data))
            image.load()
            return image
        if len(data) >= 32 and struct.unpack_from("<I", data)[0] == LOSSLESS_MAGIC:
            _magic, width, height, _alpha, compress, *_ = struct.unpack_from("<8I", data)
            pixels = data[32:]
            if compress:
                try:
                    pixels = inflate(pixels, MAX_ENTRY_BYTES)
                except zlib.error as error:
                    raise InputError(f"{self.name}: {entry.name}: bad zlib pixels ({error})") from None
            if width * height * 4 != len(pixels) or not width or not height:
                raise InputError(f"{self.name}: {entry.name}: {len(pixels)} pixel bytes for {width}x{height}")
            # ARGB32 in host (little-endian) order: bytes are B, G, R, A.
            bgra = np.frombuffer(pixels, np.uint8).reshape(height, width, 4)
            return Image.fromarray(np.ascontiguousarray(bgra[..., [2, 1, 0, 3]]), "RGBA")
        raise InputError(f"{self.name}: {entry.name}: image codec not read (magic {data[:4].hex()})")

    def images(self) -> list[EetEntry]:
        """The ``edje/images/*`` entries."""
        return [e for e in self._entries if e.name.startswith("edje/images/")]


def write_eet(entries: dict[str, bytes], compress: bool = False) -> bytes:
    """A minimal Eet file holding ``entries`` (name -> bytes, zlib when ``compress``), for tests."""
    names = bytearray()
    blobs = bytearray()
    table: list[tuple[int, int, int, int, int, int]] = []
    header = 12 + 24 * len(entries)
    stored_items = [(name, zlib.compress(data) if compress else data, len(data)) for name, data in entries.items()]
    names_start = header
    names_size = sum(len(name.encode()) + 1 for name in entries)
    data_start = names_start + names_size
    for name, stored, size in stored_items:
        encoded = name.encode() + b"\0"
        table.append((data_start + len(blobs), len(stored), size, names_start + len(names), len(encoded), FLAG_COMPRESSED if compress else 0))
        names += encoded
        blobs += stored
    out = bytearray(struct.pack(">III", MAGIC, len(entries), 0))
    for row in table:
        out += struct.pack(">6I", *row)
    return bytes(out + names + blobs)


def lossless_image_entry(rgba: np.ndarray, compress: bool = True) -> bytes:
    """An Eet lossless image entry for ``rgba`` (H, W, 4) uint8, for tests."""
    height, width = rgba.shape[:2]
    pixels = np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]).tobytes()
    body = zlib.compress(pixels) if compress else pixels
    return struct.pack("<8I", LOSSLESS_MAGIC, width, height, 1, int(compress), 0, 0, 0) + body
