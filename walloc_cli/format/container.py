"""The ``.wlc`` container: framing only (signature, version, JSON header, CRC-checked chunks).

The normative byte-by-byte spec is ``formats/wlc.md``; this module is its reference
implementation. The design borrows PNG's chunk framing (signature that catches text-mode
mangling, 4-letter chunk types whose first letter says critical/ancillary, a CRC-32 per chunk,
an explicit END chunk) and encodec's JSON header (self-describing, no pickle).

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

import io
import json
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Any, BinaryIO

from walloc_cli.errors import FormatError

__all__ = [
    "KNOWN_CHUNKS",
    "MAGIC",
    "MAX_CHUNK",
    "MAX_HEADER",
    "VERSION",
    "Chunk",
    "WlcReader",
    "WlcWriter",
    "dumps",
    "loads",
    "read",
    "sniff",
    "write",
    "write_all",
]

# PNG-style signature: the high-bit first byte catches 7-bit channels, CR LF catches CRLF->LF
# conversion, ^Z stops a DOS `type`, the final LF catches LF->CRLF conversion.
MAGIC: bytes = b"\x89WLC\r\n\x1a\n"
VERSION: tuple[int, int] = (1, 0)  # (major, minor) written by default; readers accept any minor of their major
MINOR_WRITTEN = 3  # newest minor this walloc writes: 1.1 added the volume header key latent.condition, 1.2 the exif and xmp chunks, 1.3 image.icc, tight latent.bits and the jxl payload
MAX_HEADER: int = 1 << 20  # largest JSON header, bytes (inclusive)
MIN_HEADER: int = 2  # the smallest JSON object, "{}"
MAX_CHUNK: int = 256 << 20  # largest chunk payload, bytes (inclusive)
KNOWN_CHUNKS: frozenset[str] = frozenset({"LATN", "ALPH", "ICCP", "AUDB", "VOLT", "END ", "exif", "xmp "})
END: str = "END "

_U32 = struct.Struct("<I")
_PREAMBLE = struct.Struct("<8sBBI")  # signature, major, minor, header length
_CHUNK_HEAD = struct.Struct("<4sI")  # type, length
_TYPE_RE = re.compile(rb"[A-Za-z0-9 ]{4}")
# Largest single stream.read(): bounds the memory a lying length field can make us allocate
# (BufferedReader.read(n) allocates n bytes up front even when the file is shorter).
_READ_BLOCK: int = 1 << 20


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


def _encode_header(header: dict[str, Any]) -> bytes:
    """The canonical header bytes: sorted keys, no spaces, ASCII only (byte-stable output)."""
    if not isinstance(header, dict):
        raise TypeError(f"header must be a dict, got {type(header).__name__}")
    # allow_nan=False: NaN/Infinity are not JSON, and the reader refuses them.
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    raw = text.encode("ascii")
    if len(raw) > MAX_HEADER:
        raise ValueError(f"header is {len(raw)} bytes, more than the {MAX_HEADER >> 20} MiB limit")
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
    :meth:`write_chunk`, the END chunk by :meth:`close`. Used as a context manager, END is
    written only on a clean exit: after an exception the output deliberately lacks END, so a
    reader reports it as truncated instead of accepting a half-written file. The writer does not
    close ``stream`` (the caller owns it) but flushes it on :meth:`close`.
    """

    bytes_written: int

    def __init__(self, stream: BinaryIO, header: dict[str, Any], minor: int = VERSION[1]) -> None:
        """``minor``: the format minor version the file needs (the lowest that defines every
        header key it carries, so files without newer keys stay readable as ``1.0``)."""
        if not 0 <= minor <= MINOR_WRITTEN:
            raise ValueError(f"this walloc writes minor versions 0..{MINOR_WRITTEN}, not {minor}")
        self._stream = stream
        self._closed = False
        self.bytes_written = 0
        raw = _encode_header(header)
        head = _PREAMBLE.pack(MAGIC, VERSION[0], minor, len(raw)) + raw
        self._emit(head + _U32.pack(zlib.crc32(head)))

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        write_all(self._stream, data)
        self.bytes_written += len(data)

    def _frame(self, chunk_type: str, data: bytes | bytearray | memoryview) -> None:
        raw_type = chunk_type.encode("ascii")
        crc = zlib.crc32(data, zlib.crc32(raw_type))
        # Three writes instead of one concatenation: avoids copying a payload of up to 256 MiB.
        self._emit(_CHUNK_HEAD.pack(raw_type, len(data)))
        self._emit(data)
        self._emit(_U32.pack(crc))

    def write_chunk(self, chunk: Chunk) -> None:
        """Append one chunk. ``END `` is reserved: :meth:`close` writes it."""
        if self._closed:
            raise ValueError("cannot write a chunk: the writer is closed")
        if chunk.type == END:
            raise ValueError("the END chunk is written by close(), not write_chunk()")
        self._frame(chunk.type, chunk.data)

    def close(self) -> None:
        """Write the END chunk and flush; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._frame(END, b"")
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


def write(stream: BinaryIO, header: dict[str, Any], chunks: Iterable[Chunk]) -> int:
    """Write a complete ``.wlc`` file to ``stream``; return the number of bytes written."""
    writer = WlcWriter(stream, header)
    with writer:
        for chunk in chunks:
            writer.write_chunk(chunk)
    return writer.bytes_written


def dumps(header: dict[str, Any], chunks: Iterable[Chunk]) -> bytes:
    """A complete ``.wlc`` file as bytes."""
    buf = io.BytesIO()
    write(buf, header, chunks)
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


def _reject_constant(name: str) -> Any:
    raise FormatError(f"header is not valid JSON: {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys make the meaning reader-dependent (first or last wins); refuse them.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise FormatError(f"header is not valid: duplicate key {key!r}")
        obj[key] = value
    return obj


def _decode_header(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"header is not valid UTF-8 (byte {e.start})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except RecursionError:
        raise FormatError("header is not valid: JSON nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and int-digit limits of Python >= 3.11
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FormatError(f"header is not valid JSON: {first}") from None
    if not isinstance(obj, dict):
        raise FormatError(f"header is not a JSON object (got {type(obj).__name__})")
    return obj


class WlcReader:
    """Streaming ``.wlc`` reader.

    The constructor reads and checks everything up to the end of the header (signature,
    version, header length and CRC, JSON), so ``header`` and ``version`` are available before
    any payload is read. :meth:`iter_chunks` then yields chunks one at a time, each only after
    its CRC has been verified; it can be iterated once, since the stream is consumed.
    """

    header: dict[str, Any]
    version: tuple[int, int]

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._started = False
        pre = _read_upto(stream, _PREAMBLE.size)
        if not pre:
            raise FormatError("empty file")
        sig = pre[: len(MAGIC)]
        if sig != MAGIC:
            raise _signature_error(sig)
        if len(pre) < len(MAGIC) + 2:
            raise FormatError("truncated: file ends inside the version")
        major, minor = pre[8], pre[9]
        # The version is checked before anything else is interpreted: a future major version
        # may lay out the rest differently, so its header length would mean nothing to us.
        if major != VERSION[0]:
            raise FormatError(
                f"unsupported .wlc format version {major}.{minor} (this walloc reads {VERSION[0]}.x)"
            )
        self.version = (major, minor)
        if len(pre) < _PREAMBLE.size:
            raise FormatError("truncated: file ends inside the header length")
        (length,) = _U32.unpack_from(pre, 10)
        if length > MAX_HEADER:
            raise FormatError(f"header length {length} exceeds the {MAX_HEADER >> 20} MiB limit")
        if length < MIN_HEADER:
            raise FormatError(f"header length {length} is too small (at least {MIN_HEADER})")
        raw = _read_upto(stream, length)
        if len(raw) < length:
            raise FormatError("truncated: file ends inside the header")
        crc = _read_upto(stream, 4)
        if len(crc) < 4:
            raise FormatError("truncated: file ends inside the header CRC")
        if _U32.unpack(crc)[0] != zlib.crc32(raw, zlib.crc32(pre)):
            raise FormatError("header is corrupt: CRC mismatch")
        self.header = _decode_header(raw)

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
        return self._chunks(on_damage, skip, max(0, peek))

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
            head_data = b""
            if skip is not None and chunk_type in KNOWN_CHUNKS and chunk_type != END:
                head_data = _read_upto(stream, min(peek, length))
                if len(head_data) < min(peek, length):
                    raise FormatError(f"truncated: file ends inside {label}")
                if skip(chunk_type, head_data):
                    self._pass_over(length - len(head_data) + 4, label)  # the rest, and the CRC
                    continue
            data = head_data + _read_upto(stream, length - len(head_data)) if head_data else _read_upto(stream, length)
            crc = _read_upto(stream, 4) if len(data) == length else b""
            if len(crc) < 4:
                raise FormatError(f"truncated: file ends inside {label}")
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
                    f"{VERSION[0]}.{MINOR_WRITTEN} files, this one is {self.version[0]}.{self.version[1]}"
                )
            # else: unknown ancillary chunk, skipped by design.


def read(stream: BinaryIO) -> tuple[dict[str, Any], list[Chunk]]:
    """Read a complete ``.wlc`` file from ``stream``: its header and its chunks (END excluded)."""
    reader = WlcReader(stream)
    return reader.header, list(reader.iter_chunks())


def loads(data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], list[Chunk]]:
    """Parse a complete ``.wlc`` file held in memory."""
    return read(io.BytesIO(data))
