"""The ``.wlc`` container: framing only (signature, version, header, CRC-checked chunks).

The normative byte-by-byte spec is ``formats/wlc.md``; this module is its reference
implementation. The design borrows PNG's chunk framing (signature that catches text-mode
mangling, chunk types that say critical/ancillary, a CRC-32 per chunk, an explicit end) and
encodec's self-describing header (no pickle). Two majors share the signature:

* **1.x**: a canonical JSON header behind a u32 length, chunks framed as 4-letter type, u32
  length, data, CRC, and a 12-byte ``END `` chunk;
* **2.0** (written by default): the compact binary header of :mod:`walloc_cli.format.compact`
  behind a varint length, chunks framed as a one-byte code, varint length, data, CRC, and a
  one-byte END. The fixed overhead of a photo drops from ~575 to ~55 bytes.

Readers read both; :class:`WlcReader` yields the same :class:`Chunk` objects (4-letter types)
and the same header dict for both, so the decoders above do not know which major they read.
Writers write 2.0 unless asked for 1.x (``major=1``, or inside :func:`wlc_version`), and 1.x
bytes are exactly what earlier versions of walloc wrote.

Two properties drive most of the code:

* **Streaming both ways.** The writer never seeks, so ``walloc compress photo.png -o - | ...`` works on a
  pipe; the reader consumes the stream front to back and yields chunks lazily, so a long
  signal is decoded in bounded memory and a damaged chunk fails only when it is reached.
* **Hostile input is cheap to refuse.** Every length is checked against a hard limit *before*
  anything is read or allocated, and data is read in blocks of at most ``_READ_BLOCK`` bytes,
  so memory grows with the bytes actually present, never with the bytes a header claims. A
  40-byte file that declares a 4 GB chunk costs a few KiB. Every problem with a file raises
  :class:`~walloc_cli.errors.FormatError` with one human-readable line; any other exception
  from the reader is a bug.

Layered API (as in encodec / soundfile): :class:`WlcWriter` / :class:`WlcReader` for streaming,
:func:`write` / :func:`read` over file objects, :func:`dumps` / :func:`loads` over bytes.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Any, BinaryIO

from walloc_cli.errors import FormatError


def _compact() -> Any:
    """:mod:`walloc_cli.format.compact`, imported when a header is first coded: it needs the
    header validator's bounds and the payload's chunk rule (numpy), which ``import walloc_cli``
    (the Pillow plugin registers this module) must not load."""
    from walloc_cli.format import compact

    return compact

__all__ = [
    "CHUNK_CODES",
    "KNOWN_CHUNKS",
    "MAGIC",
    "MAJORS",
    "MAX_CHUNK",
    "MAX_HEADER",
    "VERSION",
    "Chunk",
    "WlcReader",
    "WlcWriter",
    "chunk_size",
    "default_major",
    "dumps",
    "loads",
    "read",
    "sniff",
    "wlc_version",
    "write",
    "write_all",
]

# PNG-style signature: the high-bit first byte catches 7-bit channels, CR LF catches CRLF->LF
# conversion, ^Z stops a DOS `type`, the final LF catches LF->CRLF conversion.
MAGIC: bytes = b"\x89WLC\r\n\x1a\n"
VERSION: tuple[int, int] = (2, 0)  # (major, minor) written by default; readers accept any minor of their majors
MAJORS: tuple[int, ...] = (1, 2)  # the majors this walloc reads and writes
# Newest minor this walloc writes, per major: 1.1 added the volume header key latent.condition,
# 1.2 the exif and xmp chunks, 1.3 image.icc, tight latent.bits and the jxl payload; 2.0 holds
# all of 1.3 in its compact form, 2.1 adds latent.split (the payload's low-pass group in chunks
# of its own; formats/wlc.md, "Format 2.1"), 2.2 the ctx payload ("Format 2.2").
MINOR_WRITTEN: dict[int, int] = {1: 3, 2: 2}
MAX_HEADER: int = 1 << 20  # largest header, bytes (inclusive)
MIN_HEADER: dict[int, int] = {1: 2, 2: 1}  # the smallest header: JSON "{}" (1.x), the form byte (2.0)
MAX_CHUNK: int = 256 << 20  # largest chunk payload, bytes (inclusive)
KNOWN_CHUNKS: frozenset[str] = frozenset({"LATN", "ALPH", "ICCP", "AUDB", "VOLT", "END ", "exif", "xmp "})
END: str = "END "
#: Format 2.0: the one-byte code of each chunk type. Codes 0x01-0x7F are critical, 0x80-0xFF
#: (high bit set) ancillary; 0x00 is the END byte.
CHUNK_CODES: dict[str, int] = {"LATN": 0x01, "ALPH": 0x02, "ICCP": 0x03, "AUDB": 0x04, "VOLT": 0x05, "exif": 0x81, "xmp ": 0x82}
_CODE_TYPES: dict[int, str] = {code: name for name, code in CHUNK_CODES.items()}
_END_CODE = 0x00
_ANCILLARY = 0x80

_U32 = struct.Struct("<I")
_PREAMBLE = struct.Struct("<8sBBI")  # 1.x: signature, major, minor, header length
_VERSIONED = 10  # signature and version: the bytes every major shares
_CHUNK_HEAD = struct.Struct("<4sI")  # type, length
_TYPE_RE = re.compile(rb"[A-Za-z0-9 ]{4}")
# Largest single stream.read(): bounds the memory a lying length field can make us allocate
# (BufferedReader.read(n) allocates n bytes up front even when the file is shorter).
_READ_BLOCK: int = 1 << 20
# The major a writer writes when its caller names none: 2, or 1 inside ``wlc_version(1)``. A
# context variable, so that ``walloc compress --wlc-version 1`` reaches the writers of every
# modality without each codec growing a parameter, and threads do not see each other's choice.
_WRITE_MAJOR: contextvars.ContextVar[int] = contextvars.ContextVar("wlc_write_major", default=VERSION[0])


def chunk_size(length: int, major: int) -> int:
    """Bytes a chunk with ``length`` bytes of data takes in a file of format ``major``."""
    head = _CHUNK_HEAD.size if major == 1 else 1 + len(_compact().encode_varint(length))
    return head + length + _U32.size


def default_major() -> int:
    """The major version writers write here when not told (2; 1 inside :func:`wlc_version`)."""
    return _WRITE_MAJOR.get()


@contextlib.contextmanager
def wlc_version(major: int) -> Iterator[None]:
    """Within the block, writers that are not told a major write ``major`` (1: files that walloc
    before format 2.0 reads, byte for byte as it wrote them; 2: the compact format)."""
    if major not in MAJORS:
        raise ValueError(f"this walloc writes .wlc format {' or '.join(map(str, MAJORS))}, not {major}")
    token = _WRITE_MAJOR.set(major)
    try:
        yield
    finally:
        _WRITE_MAJOR.reset(token)


def _valid_type(raw: bytes) -> bool:
    return _TYPE_RE.fullmatch(raw) is not None


def _is_critical(chunk_type: str) -> bool:
    # Only a lowercase first letter marks a chunk as safe to skip; digits and space count as
    # critical so that an unexpected first byte fails safe rather than silently dropping data.
    return not ("a" <= chunk_type[0] <= "z")


def _label(index: int, chunk_type: str) -> str:
    """``chunk 2 (LATN)``; END shows without its padding space."""
    return f"chunk {index} ({chunk_type.rstrip()})"


@dataclass(frozen=True)
class Chunk:
    """One framed payload: a 4-character type from ``[A-Za-z0-9 ]`` and its bytes.

    The type's first letter is its class: uppercase (or digit/space) = critical, a reader that
    does not know it must refuse the file; lowercase = ancillary, an unknown one is skipped.
    """

    type: str
    data: bytes

    def __post_init__(self) -> None:
        # Validate at construction so a bad chunk is a programming error at its source, not a
        # corrupt file discovered later by some reader.
        if not isinstance(self.type, str) or not _valid_type(self.type.encode("ascii", "replace")):
            raise ValueError(f"chunk type must be 4 characters from [A-Za-z0-9 ], got {self.type!r}")
        if not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise TypeError(f"chunk data must be bytes, got {type(self.data).__name__}")
        if not isinstance(self.data, bytes):  # freeze mutable buffers so the chunk stays hashable
            object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) > MAX_CHUNK:
            raise ValueError(
                f"chunk {self.type!r} holds {len(self.data)} bytes, more than the {MAX_CHUNK >> 20} MiB"
                " limit; split the payload into several chunks"
            )


def sniff(prefix: bytes) -> bool:
    """True when ``prefix`` (the first bytes of a file, at least 8) starts with :data:`MAGIC`."""
    return bytes(prefix[: len(MAGIC)]) == MAGIC


def _encode_header(header: dict[str, Any], major: int) -> bytes:
    """The canonical header bytes: 1.x JSON (sorted keys, no spaces, ASCII only), or 2.0's
    compact form, checked to give back what a 2.0 file keeps of ``header``."""
    if not isinstance(header, dict):
        raise TypeError(f"header must be a dict, got {type(header).__name__}")
    # allow_nan=False: NaN/Infinity are not JSON, and the reader refuses them.
    raw = _compact().canonical_json(header) if major == 1 else _compact().encode(header)
    if len(raw) > MAX_HEADER:
        raise ValueError(f"header is {len(raw)} bytes, more than the {MAX_HEADER >> 20} MiB limit")
    if major == 2 and _compact().canonical_json(_compact().decode(raw)) != _compact().canonical_json(_compact().stored_form(header)):
        # lossless by construction (what the core cannot say goes into the extras): a bug
        raise AssertionError("the compact header does not give the header back")
    return raw


def write_all(stream: BinaryIO, data: bytes | bytearray | memoryview) -> None:
    """Write every byte: raw (unbuffered) streams and pipes may accept only part of a write."""
    view = memoryview(data).cast("B")
    while view:
        n = stream.write(view)
        if n is None:  # some file-likes return None after writing everything
            return
        if n <= 0:
            raise OSError("stream accepted no bytes")
        view = view[n:]


class WlcWriter:
    """Streaming ``.wlc`` writer over a binary file object; it never seeks or tells.

    The signature, version and header are written by the constructor, each chunk by
    :meth:`write_chunk`, the end marker by :meth:`close`. Used as a context manager, the end is
    written only on a clean exit: after an exception the output deliberately lacks it, so a
    reader reports it as truncated instead of accepting a half-written file. The writer does not
    close ``stream`` (the caller owns it) but flushes it on :meth:`close`.
    """

    bytes_written: int
    version: tuple[int, int]

    def __init__(self, stream: BinaryIO, header: dict[str, Any], minor: int = 0, major: int | None = None) -> None:
        """``major``: 1 or 2; by default :func:`default_major` (2). ``minor``: for a 1.x file, the
        minor version it needs (the lowest that defines every header key it carries, so files
        without newer keys stay readable as ``1.0``). A 2.x file is the lowest 2.x minor that
        defines its header (:func:`minor_needed`: 2.2 the ``ctx`` payload, 2.1 ``latent.split``;
        no 1.x minor has either), whatever ``minor`` says."""
        major = default_major() if major is None else major
        if major not in MAJORS:
            raise ValueError(f"this walloc writes .wlc format {' or '.join(map(str, MAJORS))}, not {major}")
        if major == 1 and not 0 <= minor <= MINOR_WRITTEN[1]:
            raise ValueError(f"this walloc writes minor versions 0..{MINOR_WRITTEN[1]}, not {minor}")
        from walloc_cli.format.header import minor_needed  # here: it imports numpy, which --version never needs

        needed, what = minor_needed(header)
        if major == 1 and needed:
            raise ValueError(f"{what}: a 1.x file cannot declare it")
        self.version = (1, minor) if major == 1 else (2, needed)
        self._stream = stream
        self._closed = False
        self.bytes_written = 0
        raw = _encode_header(header, major)
        if major == 1:
            head = _PREAMBLE.pack(MAGIC, 1, minor, len(raw)) + raw
        else:
            head = MAGIC + bytes(self.version) + _compact().encode_varint(len(raw)) + raw
        self._emit(head + _U32.pack(zlib.crc32(head)))

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        write_all(self._stream, data)
        self.bytes_written += len(data)

    def _frame(self, chunk_type: str, data: bytes | bytearray | memoryview) -> None:
        if self.version[0] == 1:
            raw_type = chunk_type.encode("ascii")
            head = _CHUNK_HEAD.pack(raw_type, len(data))
        else:
            raw_type = bytes([CHUNK_CODES[chunk_type]])
            head = raw_type + _compact().encode_varint(len(data))
        crc = zlib.crc32(data, zlib.crc32(raw_type))
        # Three writes instead of one concatenation: avoids copying a payload of up to 256 MiB.
        self._emit(head)
        self._emit(data)
        self._emit(_U32.pack(crc))

    def write_chunk(self, chunk: Chunk) -> None:
        """Append one chunk. ``END `` is reserved: :meth:`close` writes it."""
        if self._closed:
            raise ValueError("cannot write a chunk: the writer is closed")
        if chunk.type == END:
            raise ValueError("the END chunk is written by close(), not write_chunk()")
        if self.version[0] == 2 and chunk.type not in CHUNK_CODES:
            raise ValueError(f"chunk type {chunk.type!r} has no code in .wlc format 2.0 (known: {', '.join(CHUNK_CODES)})")
        self._frame(chunk.type, chunk.data)

    def close(self) -> None:
        """Write the end (1.x: the ``END `` chunk, 2.0: the END byte) and flush; calling it again
        does nothing."""
        if self._closed:
            return
        self._closed = True
        if self.version[0] == 1:
            self._frame(END, b"")
        else:
            self._emit(bytes([_END_CODE]))
        flush = getattr(self._stream, "flush", None)
        if flush is not None:
            flush()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> WlcWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True  # leave the file without END: detectably incomplete


def write(stream: BinaryIO, header: dict[str, Any], chunks: Iterable[Chunk], major: int | None = None, minor: int = 0) -> int:
    """Write a complete ``.wlc`` file to ``stream``; return the number of bytes written.
    ``major``/``minor`` as :class:`WlcWriter` takes them."""
    writer = WlcWriter(stream, header, minor=minor, major=major)
    with writer:
        for chunk in chunks:
            writer.write_chunk(chunk)
    return writer.bytes_written


def dumps(header: dict[str, Any], chunks: Iterable[Chunk], major: int | None = None, minor: int = 0) -> bytes:
    """A complete ``.wlc`` file as bytes."""
    buf = io.BytesIO()
    write(buf, header, chunks, major=major, minor=minor)
    return buf.getvalue()


def _read_upto(stream: BinaryIO, n: int) -> bytes:
    """Read ``n`` bytes, or fewer only at end of stream, in blocks of at most ``_READ_BLOCK``.

    Looping handles pipes and raw streams, whose read() may return short; the block bound makes
    memory follow the bytes really present, not the length a (possibly corrupt) field declares.
    """
    if n <= _READ_BLOCK:
        first = stream.read(n)
        if len(first) == n or not first:
            return bytes(first)
        parts = [first]
        got = len(first)
    else:
        parts, got = [], 0
    while got < n:
        part = stream.read(min(n - got, _READ_BLOCK))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _signature_error(sig: bytes) -> FormatError:
    """Explain a bad signature, naming the usual transfer accidents the signature detects."""
    if len(sig) < len(MAGIC) and MAGIC.startswith(sig):
        return FormatError("truncated: file ends inside the signature")
    if sig[1:4] == b"WLC":
        if sig[0] == MAGIC[0] & 0x7F:
            return FormatError("not a .wlc file (bad signature: high bits stripped by a 7-bit transfer?)")
        if sig[0] == MAGIC[0]:
            return FormatError("not a .wlc file (bad signature: line endings altered by a text-mode transfer?)")
    return FormatError("not a .wlc file (bad signature)")


def _read_varint(stream: BinaryIO, limit: int, truncated: str, what: str) -> int:
    """A minimal LEB128 varint of at most ``limit``, read byte by byte (2.0 lengths): FormatError
    ``truncated`` at end of stream, or naming ``what`` when it is too large or overlong."""
    value = count = 0
    most = -(-limit.bit_length() // 7)  # bytes of the longest minimal varint <= limit
    while True:
        byte = stream.read(1)
        if not byte:
            raise FormatError(truncated)
        value |= (byte[0] & 0x7F) << (7 * count)
        count += 1
        if value > limit:
            raise FormatError(f"{what} exceeds the {limit >> 20} MiB limit")
        if not byte[0] & 0x80:
            if byte[0] == 0 and count > 1:
                raise FormatError(f"{what} is an overlong varint (not minimal)")
            return value
        if count >= most:
            raise FormatError(f"{what} is an overlong varint (more than {most} bytes)")


class WlcReader:
    """Streaming ``.wlc`` reader.

    The constructor reads and checks everything up to the end of the header (signature,
    version, header length and CRC, the JSON or compact header), so ``header`` and ``version`` are available before
    any payload is read. :meth:`iter_chunks` then yields chunks one at a time, each only after
    its CRC has been verified; it can be iterated once, since the stream is consumed.
    """

    header: dict[str, Any]
    version: tuple[int, int]

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._started = False
        pre = _read_upto(stream, _VERSIONED)
        if not pre:
            raise FormatError("empty file")
        sig = pre[: len(MAGIC)]
        if sig != MAGIC:
            raise _signature_error(sig)
        if len(pre) < _VERSIONED:
            raise FormatError("truncated: file ends inside the version")
        major, minor = pre[8], pre[9]
        # The version is checked before anything else is interpreted: a future major version
        # may lay out the rest differently, so its header length would mean nothing to us.
        if major not in MAJORS:
            raise FormatError(
                f"unsupported .wlc format version {major}.{minor} (this walloc reads {' and '.join(f'{m}.x' for m in MAJORS)})"
            )
        self.version = (major, minor)
        truncated = "truncated: file ends inside the header length"
        if major == 1:
            more = _read_upto(stream, _PREAMBLE.size - _VERSIONED)
            if len(more) < _PREAMBLE.size - _VERSIONED:
                raise FormatError(truncated)
            (length,) = _U32.unpack(more)
            if length > MAX_HEADER:
                raise FormatError(f"header length {length} exceeds the {MAX_HEADER >> 20} MiB limit")
        else:
            length = _read_varint(stream, MAX_HEADER, truncated, "header length")
            more = _compact().encode_varint(length)  # as read: _read_varint accepts only the minimal form
        if length < MIN_HEADER[major]:
            raise FormatError(f"header length {length} is too small (at least {MIN_HEADER[major]})")
        raw = _read_upto(stream, length)
        if len(raw) < length:
            raise FormatError("truncated: file ends inside the header")
        crc = _read_upto(stream, 4)
        if len(crc) < 4:
            raise FormatError("truncated: file ends inside the header CRC")
        if _U32.unpack(crc)[0] != zlib.crc32(raw, zlib.crc32(more, zlib.crc32(pre))):
            raise FormatError("header is corrupt: CRC mismatch")
        self.header = _compact().decode_json_object(raw) if major == 1 else _compact().decode(raw)
        from walloc_cli.format.header import minor_needed

        needed, what = minor_needed(self.header)
        if needed and self.version < (2, needed):
            raise FormatError(f"header is not valid: {what}, this file is {major}.{minor}")

    def iter_chunks(self, on_damage: Callable[[str], None] | None = None, skip: Callable[[str, bytes], bool] | None = None, peek: int = 0) -> Iterator[Chunk]:
        """Yield each known or unknown-ancillary chunk except END, verifying CRCs as it goes.

        Raises :class:`FormatError` at the first problem: truncation, CRC mismatch, invalid or
        unknown critical type, oversize length, missing END, or bytes after END. Chunks before
        the problem have already been yielded, which is what lets a damaged chunk fail alone.
        With ``on_damage``, a chunk whose CRC does not match (its framing intact) is reported
        to it and skipped, and reading goes on: the caller decides what a missing chunk means.

        With ``skip``, each known chunk other than END is first offered to ``skip(type, head)``
        with ``head`` = its first ``min(peek, length)`` bytes (unverified: the CRC covers the
        whole chunk); when it returns True the rest of the chunk and its CRC are passed over
        unread (seeking when the stream can, else reading and discarding in bounded blocks) and
        the chunk is not yielded. This is how a decoder starts mid-file: a skipped chunk is
        neither checked nor decoded, so the caller must check that the chunks it does decode
        are the ones it expected.
        """
        if self._started:
            raise RuntimeError("iter_chunks() can only be called once: the stream is consumed")
        self._started = True
        if self.version[0] == 1:
            return self._chunks(on_damage, skip, max(0, peek))
        return self._chunks_2(on_damage, skip, max(0, peek))

    def _pass_over(self, count: int, label: str) -> None:
        """Advance the stream ``count`` bytes without keeping them; truncation is an error."""
        stream = self._stream
        seekable = getattr(stream, "seekable", None)
        if seekable is not None and seekable():
            here = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            if here + count > end:
                raise FormatError(f"truncated: file ends inside {label}")
            stream.seek(here + count)
            return
        while count > 0:
            part = stream.read(min(count, _READ_BLOCK))
            if not part:
                raise FormatError(f"truncated: file ends inside {label}")
            count -= len(part)

    def _chunks(self, on_damage: Callable[[str], None] | None = None, skip: Callable[[str, bytes], bool] | None = None, peek: int = 0) -> Iterator[Chunk]:
        stream = self._stream
        index = 0
        while True:
            index += 1
            head = _read_upto(stream, _CHUNK_HEAD.size)
            if not head:
                raise FormatError("truncated: no END chunk")
            if len(head) < 4:
                raise FormatError(f"truncated: file ends inside chunk {index}")
            raw_type = head[:4]
            if not _valid_type(raw_type):
                raise FormatError(f"chunk {index} has an invalid type {raw_type!r}")
            chunk_type = raw_type.decode("ascii")
            label = _label(index, chunk_type)
            if len(head) < _CHUNK_HEAD.size:
                raise FormatError(f"truncated: file ends inside {label}")
            (length,) = _U32.unpack_from(head, 4)
            if length > MAX_CHUNK:
                raise FormatError(f"{label} length {length} exceeds the {MAX_CHUNK >> 20} MiB limit")
            body = self._body(chunk_type if chunk_type in KNOWN_CHUNKS and chunk_type != END else None, length, label, skip, peek)
            if body is None:
                continue
            data, crc = body
            # The CRC is checked before the type is acted on, so a flipped type bit reports as
            # corruption and an ancillary chunk is verified even though it is then skipped.
            if _U32.unpack(crc)[0] != zlib.crc32(data, zlib.crc32(raw_type)):
                if on_damage is None or chunk_type == END:
                    raise FormatError(f"{label} is corrupt: CRC mismatch")
                on_damage(f"{label} is corrupt: CRC mismatch")
                continue
            if chunk_type == END:
                if length != 0:
                    raise FormatError(f"{label}: END chunk must be empty, it holds {length} bytes")
                if stream.read(1):
                    raise FormatError("unexpected data after END chunk")
                return
            if chunk_type in KNOWN_CHUNKS:
                yield Chunk(chunk_type, data)
            elif _is_critical(chunk_type):
                raise FormatError(
                    f"{label} is an unknown critical chunk; this walloc reads "
                    f"1.{MINOR_WRITTEN[1]} files, this one is {self.version[0]}.{self.version[1]}"
                )
            # else: unknown ancillary chunk, skipped by design.

    def _body(self, chunk_type: str | None, length: int, label: str, skip: Callable[[str, bytes], bool] | None, peek: int) -> tuple[bytes, bytes] | None:
        """The data and CRC bytes of a chunk whose head (type, length) has been read; ``None`` when
        ``skip`` passed over it after its first ``peek`` bytes (only chunks given a
        ``chunk_type`` are offered to ``skip``). Both format versions frame data + CRC alike."""
        stream = self._stream
        head_data = b""
        if skip is not None and chunk_type is not None:
            head_data = _read_upto(stream, min(peek, length))
            if len(head_data) < min(peek, length):
                raise FormatError(f"truncated: file ends inside {label}")
            if skip(chunk_type, head_data):
                self._pass_over(length - len(head_data) + 4, label)  # the rest, and the CRC
                return None
        data = head_data + _read_upto(stream, length - len(head_data)) if head_data else _read_upto(stream, length)
        crc = _read_upto(stream, 4) if len(data) == length else b""
        if len(crc) < 4:
            raise FormatError(f"truncated: file ends inside {label}")
        return data, crc

    def _chunks_2(self, on_damage: Callable[[str], None] | None = None, skip: Callable[[str, bytes], bool] | None = None, peek: int = 0) -> Iterator[Chunk]:
        """Format 2.0: code byte, varint length, data, CRC; the END byte last."""
        stream = self._stream
        index = 0
        while True:
            index += 1
            head = _read_upto(stream, 1)
            if not head:
                raise FormatError("truncated: no END chunk")
            code = head[0]
            if code == _END_CODE:
                if stream.read(1):
                    raise FormatError("unexpected data after END chunk")
                return
            chunk_type = _CODE_TYPES.get(code)
            label = _label(index, chunk_type) if chunk_type is not None else f"chunk {index} (code 0x{code:02x})"
            length = _read_varint(stream, MAX_CHUNK, f"truncated: file ends inside {label}", f"{label} length")
            body = self._body(chunk_type, length, label, skip, peek)
            if body is None:
                continue
            data, crc = body
            # As in 1.x, the CRC (over the code byte and the data) is checked before the code is
            # acted on: a flipped code bit reports as corruption, not as an unknown chunk.
            if _U32.unpack(crc)[0] != zlib.crc32(data, zlib.crc32(head)):
                if on_damage is None:
                    raise FormatError(f"{label} is corrupt: CRC mismatch")
                on_damage(f"{label} is corrupt: CRC mismatch")
                continue
            if chunk_type is not None:
                yield Chunk(chunk_type, data)
            elif not code & _ANCILLARY:
                raise FormatError(
                    f"{label} is an unknown critical chunk; this walloc reads "
                    f"2.{MINOR_WRITTEN[2]} files, this one is {self.version[0]}.{self.version[1]}"
                )
            # else: unknown ancillary chunk, skipped by design.


def read(stream: BinaryIO) -> tuple[dict[str, Any], list[Chunk]]:
    """Read a complete ``.wlc`` file from ``stream``: its header and its chunks (END excluded)."""
    reader = WlcReader(stream)
    return reader.header, list(reader.iter_chunks())


def loads(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], list[Chunk]]:
    """Parse a complete ``.wlc`` file held in memory."""
    return read(io.BytesIO(data))
