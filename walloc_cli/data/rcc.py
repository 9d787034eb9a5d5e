"""A reader for Qt's binary resource bundles (``.rcc``), the files ``rcc -binary`` writes.

GCompris (Debian ``gcompris-qt-data``) ships its activity photos inside such bundles, so the
corpus builder (:mod:`walloc_cli.data.corpus`) reads them without Qt. Layout (all integers
big-endian): a header ``b"qres"``, format version (1-3), tree, data and names offsets, and from
version 3 a flags word. The tree is an array of nodes (14 bytes each; 22 from version 2, which
adds a 64-bit modification time): a name offset, flags (1 zlib, 2 directory, 4 zstd) and either
a child count + first child index (directories) or territory, language and a data offset
(files). A name is a 16-bit length, a 32-bit hash and UTF-16BE characters; a data entry is a
32-bit length and the bytes. zlib entries are Qt's ``qCompress`` (a 32-bit uncompressed size,
then a zlib stream); zstd entries are a bare zstd frame (read only when the optional
``zstandard`` module is installed).
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

from walloc_cli.errors import InputError

MAGIC = b"qres"
COMPRESSED_ZLIB = 0x01
DIRECTORY = 0x02
COMPRESSED_ZSTD = 0x04
# A bundle's entries are unpacked into memory: refuse to inflate one past this (a corrupt
# size field must not exhaust the machine).
MAX_ENTRY_BYTES = 256 << 20


def inflate(stored: bytes, limit: int) -> bytes:
    """A whole zlib stream, at most ``limit`` bytes unpacked; raises :class:`zlib.error` when it is cut
    short or would be larger (``decompress`` alone returns what it has for a truncated stream)."""
    inflater = zlib.decompressobj()
    data = inflater.decompress(stored, limit)
    if not inflater.eof:
        raise zlib.error("stream cut short or over the size limit")
    return data


@dataclasses.dataclass(frozen=True)
class RccEntry:
    """One file of a bundle: its path inside the bundle and where its stored bytes lie."""

    path: str
    flags: int
    data_offset: int  # absolute offset of the 32-bit length that precedes the stored bytes


class RccBundle:
    """A parsed ``.rcc`` bundle held in memory; :meth:`entries` lists files, :meth:`read` unpacks one."""

    def __init__(self, blob: bytes, name: str = "bundle") -> None:
        self.blob = blob
        self.name = name
        if len(blob) < 20 or blob[:4] != MAGIC:
            raise InputError(f"{name}: not a Qt resource bundle (no 'qres' header)")
        self.version, self.tree_offset, self.data_offset, self.names_offset = struct.unpack_from(">4I", blob, 4)
        if not 1 <= self.version <= 3:
            raise InputError(f"{name}: unsupported .rcc format version {self.version}")
        self.node_size = 14 if self.version == 1 else 22
        for offset in (self.tree_offset, self.data_offset, self.names_offset):
            if offset > len(blob):
                raise InputError(f"{name}: .rcc offset {offset} past the end of the file ({len(blob)} bytes)")

    def _node(self, index: int) -> tuple[int, int, int, int]:
        """(name offset, flags, a, b): a, b are child count + first child, or locale + data offset."""
        start = self.tree_offset + index * self.node_size
        if start + 14 > len(self.blob):
            raise InputError(f"{self.name}: .rcc tree node {index} past the end of the file")
        name_offset, flags = struct.unpack_from(">IH", self.blob, start)
        if flags & DIRECTORY:
            count, first = struct.unpack_from(">II", self.blob, start + 6)
            return name_offset, flags, count, first
        _territory_language, data = struct.unpack_from(">II", self.blob, start + 6)
        return name_offset, flags, 0, data

    def _name(self, offset: int) -> str:
        start = self.names_offset + offset
        if start + 6 > len(self.blob):
            raise InputError(f"{self.name}: .rcc name at {offset} past the end of the file")
        (length,) = struct.unpack_from(">H", self.blob, start)
        raw = self.blob[start + 6 : start + 6 + 2 * length]
        if len(raw) != 2 * length:
            raise InputError(f"{self.name}: .rcc name at {offset} is cut short")
        return raw.decode("utf-16-be", errors="replace")

    def entries(self) -> list[RccEntry]:
        """Every file in the bundle, depth first in tree order, with ``/``-joined paths (no leading ``/``)."""
        found: list[RccEntry] = []
        seen: set[int] = set()
        stack: list[tuple[int, str]] = [(0, "")]
        while stack:
            index, prefix = stack.pop()
            if index in seen:  # a looping tree is corrupt: stop instead of spinning forever
                raise InputError(f"{self.name}: .rcc tree has a cycle at node {index}")
            seen.add(index)
            name_offset, flags, a, b = self._node(index)
            name = "" if index == 0 else self._name(name_offset)
            path = f"{prefix}/{name}" if prefix else name
            if flags & DIRECTORY:
                stack.extend((b + i, path) for i in reversed(range(a)))
            else:
                found.append(RccEntry(path, flags, self.data_offset + b))
        return found

    def read(self, entry: RccEntry) -> bytes:
        """The file's bytes, decompressed."""
        if entry.data_offset + 4 > len(self.blob):
            raise InputError(f"{self.name}: {entry.path}: data offset past the end of the file")
        (size,) = struct.unpack_from(">I", self.blob, entry.data_offset)
        stored = self.blob[entry.data_offset + 4 : entry.data_offset + 4 + size]
        if len(stored) != size:
            raise InputError(f"{self.name}: {entry.path}: data cut short ({len(stored)} of {size} bytes)")
        if entry.flags & COMPRESSED_ZLIB:
            if size < 4:
                raise InputError(f"{self.name}: {entry.path}: zlib entry shorter than its size field")
            (expected,) = struct.unpack_from(">I", stored)
            if expected > MAX_ENTRY_BYTES:
                raise InputError(f"{self.name}: {entry.path}: claims {expected} bytes unpacked (limit {MAX_ENTRY_BYTES})")
            try:
                data = inflate(stored[4:], MAX_ENTRY_BYTES)
            except zlib.error as error:
                raise InputError(f"{self.name}: {entry.path}: bad zlib data ({error})") from None
            if len(data) != expected:
                raise InputError(f"{self.name}: {entry.path}: unpacked {len(data)} bytes, header says {expected}")
            return data
        if entry.flags & COMPRESSED_ZSTD:
            try:
                import zstandard
            except ImportError:
                raise InputError(f"{self.name}: {entry.path}: zstd-compressed (pip install zstandard to read it)") from None
            try:
                return zstandard.ZstdDecompressor().decompress(stored, max_output_size=MAX_ENTRY_BYTES)
            except zstandard.ZstdError as error:
                raise InputError(f"{self.name}: {entry.path}: bad zstd data ({error})") from None
        return stored


def read_rcc(path: Path) -> RccBundle:
    """Parse the bundle at ``path`` (read whole: bundles are tens of MB at most)."""
    return RccBundle(path.read_bytes(), name=str(path))


def write_rcc(files: dict[str, bytes], version: int = 2, compress: bool = False) -> bytes:
    """A minimal bundle holding ``files`` (``"dir/name" -> bytes``), for tests of the reader.

    Laid out like ``rcc -binary`` does: header, data, names, tree; children of a directory are
    contiguous nodes. ``compress`` stores every file as ``qCompress`` zlib.
    """
    tree: dict[str, dict | bytes] = {}
    for path, data in files.items():
        node = tree
        *dirs, leaf = path.split("/")
        for part in dirs:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[leaf] = data
    names = bytearray()
    name_at: dict[str, int] = {}
    data_blob = bytearray()
    nodes: list[tuple[str, int, int, int]] = [("", DIRECTORY, 0, 0)]  # (name, flags, a, b)
    queue: list[tuple[int, dict]] = [(0, tree)]
    while queue:
        index, folder = queue.pop(0)
        first = len(nodes)
        nodes[index] = (nodes[index][0], DIRECTORY, len(folder), first)
        for key in sorted(folder):
            value = folder[key]
            if key not in name_at:
                name_at[key] = len(names)
                encoded = key.encode("utf-16-be")
                names += struct.pack(">HI", len(key), 0) + encoded
            if isinstance(value, dict):
                nodes.append((key, DIRECTORY, 0, 0))
                queue.append((len(nodes) - 1, value))
            else:
                stored = struct.pack(">I", len(value)) + zlib.compress(value) if compress else value
                nodes.append((key, COMPRESSED_ZLIB if compress else 0, 0, len(data_blob)))
                data_blob += struct.pack(">I", len(stored)) + stored
    header_size = 24 if version >= 3 else 20
    data_offset = header_size
    names_offset = data_offset + len(data_blob)
    tree_offset = names_offset + len(names)
    out = bytearray(MAGIC + struct.pack(">4I", version, tree_offset, data_offset, names_offset))
    if version >= 3:
        out += struct.pack(">I", 0)
    out += data_blob + names
    for key, flags, a, b in nodes:
        out += struct.pack(">IH", name_at.get(key, 0), flags)
        out += struct.pack(">II", a, b) if flags & DIRECTORY else struct.pack(">HHI", 0, 0, b)
        if version >= 2:
            out += struct.pack(">Q", 0)
    return bytes(out)
