"""Tests of the ``.wlc`` framing (``walloc_cli/format/container.py``) against ``formats/wlc.md``.

Files with unusual layouts (other versions, unknown chunk types, corrupt lengths) are built here
by ``_frame``/``_file`` (1.x) and ``_frame2``/``_file2`` (2.0), a second, independent
implementation of the spec, so the tests do not trust the writer under test to produce what
they feed the reader. The tests of 1.x write 1.x (``_format_1``); those of 2.0 say ``major=2``.
"""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from walloc_cli.format import container as wlc
from walloc_cli.format.container import (
    Chunk,
    WlcReader,
    WlcWriter,
    dumps,
    loads,
    read,
    sniff,
    write,
)
from walloc_cli.errors import FormatError

SPEC = Path(__file__).resolve().parents[1] / "formats" / "wlc.md"
GOLDEN_TINY = bytes.fromhex(
    "89574c430d0a1a0a" "0100" "07000000" "7b2261223a317d" "06b0a228" "454e4420" "00000000" "107df158"
)
END_BYTES = bytes.fromhex("454e442000000000107df158")


@pytest.fixture(autouse=True)
def _format_1() -> Iterator[None]:
    """Writers in this module write 1.x unless a test names a major (its 1.x bytes are golden)."""
    with wlc.wlc_version(1):
        yield


# --- an independent encoder of the spec, for hand-made files -------------------------------------


def _frame(chunk_type: bytes, data: bytes, *, length: int | None = None, crc: int | None = None) -> bytes:
    n = len(data) if length is None else length
    c = zlib.crc32(chunk_type + data) if crc is None else crc
    return chunk_type + struct.pack("<I", n) + data + struct.pack("<I", c)


def _file(
    header: bytes = b"{}",
    chunks: bytes = b"",
    *,
    version: tuple[int, int] = (1, 0),
    header_len: int | None = None,
    end: bool = True,
) -> bytes:
    head = wlc.MAGIC + bytes(version) + struct.pack("<I", len(header) if header_len is None else header_len)
    head += header
    return head + struct.pack("<I", zlib.crc32(head)) + chunks + (END_BYTES if end else b"")


def _sample() -> bytes:
    """A small file with every known chunk type, an empty chunk and a non-ASCII header."""
    header = {"modality": "image", "shape": [3, 4, 5], "delta": 0.125, "name": "café", "ok": True}
    chunks = [Chunk("LATN", b"\x00\x01\x02latent"), Chunk("ALPH", b""), Chunk("ICCP", b"icc!"), Chunk("LATN", b"z")]
    return dumps(header, chunks)


def _format_error(data: bytes) -> FormatError:
    with pytest.raises(FormatError) as info:
        loads(data)
    message = str(info.value)
    assert message and "\n" not in message and message[0].islower(), message
    return info.value


class NonSeekable(io.RawIOBase):
    """A write-only stream that fails on seek/tell, like a pipe."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def seek(self, *args: Any) -> int:
        raise io.UnsupportedOperation("seek")

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")

    def write(self, b: Any) -> int:
        # Accept at most 5 bytes per call, so the writer must handle short writes.
        piece = bytes(b)[:5]
        self.buf += piece
        return len(piece)


class ReadRecorder(io.RawIOBase):
    """A read-only, non-seekable stream that records every read size and returns short reads."""

    def __init__(self, data: bytes, max_piece: int = 3) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._max_piece = max_piece
        self.requests: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.requests.append(n)
        assert n is not None and n >= 0, "reader must never read to end of stream"
        piece = bytes(self._data[self._pos : self._pos + min(n, self._max_piece)])
        self._pos += len(piece)
        return piece


# --- round trips ---------------------------------------------------------------------------------


def test_round_trip_bytes() -> None:
    header, chunks = loads(_sample())
    assert header == {"modality": "image", "shape": [3, 4, 5], "delta": 0.125, "name": "café", "ok": True}
    assert chunks == [Chunk("LATN", b"\x00\x01\x02latent"), Chunk("ALPH", b""), Chunk("ICCP", b"icc!"), Chunk("LATN", b"z")]
    assert all(isinstance(c.data, bytes) for c in chunks)


def test_writer_on_non_seekable_stream_with_short_writes() -> None:
    out = NonSeekable()
    with WlcWriter(out, {"k": "v"}) as writer:
        writer.write_chunk(Chunk("LATN", bytes(range(256)) * 3))
        writer.write_chunk(Chunk("ICCP", b"profile"))
    assert writer.bytes_written == len(out.buf)
    assert read(io.BytesIO(bytes(out.buf))) == (
        {"k": "v"},
        [Chunk("LATN", bytes(range(256)) * 3), Chunk("ICCP", b"profile")],
    )


def test_reader_on_short_reads_never_reads_unbounded() -> None:
    data = _sample()
    stream = ReadRecorder(data)
    assert read(stream) == loads(data)
    # Requests follow the declared sizes (preamble, header, chunk heads, data): never beyond the
    # file, never "read everything" (-1, asserted inside ReadRecorder).
    assert max(stream.requests) <= len(data)
    assert stream.requests[0] == 10  # signature + version, nothing more (the header length follows)


def test_streaming_through_a_real_pipe() -> None:
    # Payload larger than a pipe buffer (64 KiB), so writer and reader must run concurrently.
    payload = [Chunk("LATN", os.urandom(200_000)), Chunk("ALPH", os.urandom(70_000))]
    rfd, wfd = os.pipe()

    def produce() -> None:
        with open(wfd, "wb") as w:
            write(w, {"modality": "image"}, payload, major=1)  # a new thread has its own context

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        with open(rfd, "rb", buffering=0) as r:  # raw pipe: read() returns short pieces
            reader = WlcReader(r)
            assert reader.header == {"modality": "image"} and reader.version == (1, 0)
            assert list(reader.iter_chunks()) == payload
    finally:
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_write_returns_bytes_written() -> None:
    buf = io.BytesIO()
    n = write(buf, {"a": 1}, [Chunk("LATN", b"abc")])
    assert n == len(buf.getvalue()) == len(GOLDEN_TINY) + 12 + 3


def test_iter_chunks_is_lazy_and_single_use() -> None:
    good = _frame(b"LATN", b"first")
    bad = _frame(b"LATN", b"second", crc=0)
    reader = WlcReader(io.BytesIO(_file(b'{"x":1}', good + bad)))
    it = reader.iter_chunks()
    assert next(it) == Chunk("LATN", b"first")  # delivered before the damage is reached
    with pytest.raises(FormatError, match=r"^chunk 2 \(LATN\) is corrupt: CRC mismatch$"):
        next(it)
    with pytest.raises(RuntimeError):
        reader.iter_chunks()


def test_writer_close_is_idempotent_and_final() -> None:
    buf = io.BytesIO()
    writer = WlcWriter(buf, {"a": 1})
    writer.close()
    writer.close()
    assert buf.getvalue() == GOLDEN_TINY
    assert writer.bytes_written == len(GOLDEN_TINY)
    with pytest.raises(ValueError):
        writer.write_chunk(Chunk("LATN", b""))


def test_writer_leaves_no_end_after_an_exception() -> None:
    buf = io.BytesIO()
    with pytest.raises(KeyError), WlcWriter(buf, {"a": 1}) as writer:
        writer.write_chunk(Chunk("LATN", b"partial"))
        raise KeyError("encoder failed")
    assert str(_format_error(buf.getvalue())) == "truncated: no END chunk"


def test_writer_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        WlcWriter(io.BytesIO(), {"x": float("nan")})
    with pytest.raises(TypeError):
        WlcWriter(io.BytesIO(), [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WlcWriter(io.BytesIO(), {"x": "a" * wlc.MAX_HEADER})
    with pytest.raises(ValueError):
        WlcWriter(io.BytesIO(), {}).write_chunk(Chunk("END ", b""))
    for bad_type in ("LAT", "LATNX", "LA-N", "LATÑ", "\x00ABC"):
        with pytest.raises(ValueError):
            Chunk(bad_type, b"")


def test_sniff() -> None:
    assert sniff(GOLDEN_TINY) and sniff(wlc.MAGIC)
    assert not sniff(b"") and not sniff(wlc.MAGIC[:7]) and not sniff(b"\x89PNG\r\n\x1a\n")


# --- golden bytes and the spec -------------------------------------------------------------------


def test_golden_tiny_file() -> None:
    assert dumps({"a": 1}, []) == GOLDEN_TINY
    assert loads(GOLDEN_TINY) == ({"a": 1}, [])
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the CRC is CRC-32/ISO-HDLC


def test_golden_matches_spec_hexdump() -> None:
    text = SPEC.read_text(encoding="utf-8")
    block = re.search(r"<!-- golden: tiny.*?-->\s*```text\n(.*?)```", text, re.S)
    assert block, "worked example block missing from formats/wlc.md"
    hex_bytes = "".join(line[10:58] for line in block.group(1).splitlines())
    assert bytes.fromhex(hex_bytes) == GOLDEN_TINY


def test_spec_keeps_lead_sections() -> None:
    text = SPEC.read_text(encoding="utf-8")
    assert "## Header fields (v1)\n\nDefined by walloc_cli/codecs/image.py; see below.\n" in text
    assert "## Boundary extension" in text


def test_header_is_written_in_canonical_form() -> None:
    # Sorted keys, no spaces, ASCII escapes: equal headers give byte-equal files.
    data = dumps({"b": [1, 2], "a": "é"}, [])
    assert data[14:-16] == b'{"a":"\\u00e9","b":[1,2]}'
    assert dumps({"b": [1, 2], "a": "é"}, []) == dumps({"a": "é", "b": [1, 2]}, [])


def test_independent_encoder_agrees_with_writer() -> None:
    assert _file(b'{"a":1}') == GOLDEN_TINY
    assert _file(b'{"a":1}', _frame(b"LATN", b"xy")) == dumps({"a": 1}, [Chunk("LATN", b"xy")])


# --- damaged files -------------------------------------------------------------------------------


def test_empty_file() -> None:
    assert str(_format_error(b"")) == "empty file"


def test_truncation_at_every_offset() -> None:
    data = _sample()
    for cut in range(len(data)):
        _format_error(data[:cut])
    assert str(_format_error(data[: len(data) - len(END_BYTES)])) == "truncated: no END chunk"
    assert str(_format_error(data[:5])) == "truncated: file ends inside the signature"
    assert str(_format_error(data[:20])) == "truncated: file ends inside the header"
    # Cut inside the data of the second chunk (ALPH is empty, so aim for the first: LATN).
    first_chunk_start = len(data) - len(END_BYTES) - sum(12 + n for n in (9, 0, 4, 1))
    cut = first_chunk_start + 10
    assert str(_format_error(data[:cut])) == "truncated: file ends inside chunk 1 (LATN)"


@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80, 0xFF])
def test_every_single_byte_corruption_is_detected(mask: int) -> None:
    data = _sample()
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= mask
        _format_error(bytes(damaged))


def test_specific_corruption_messages() -> None:
    data = bytearray(_sample())
    data[20] ^= 1  # inside the JSON header
    assert str(_format_error(bytes(data))) == "header is corrupt: CRC mismatch"
    body = _file(b'{"a":1}', _frame(b"LATN", b"one") + _frame(b"LATN", b"two", crc=1))
    assert str(_format_error(body)) == "chunk 2 (LATN) is corrupt: CRC mismatch"


def test_bad_signatures() -> None:
    assert str(_format_error(b"hello world, not wlc")) == "not a .wlc file (bad signature)"
    assert "bad signature" in str(_format_error(b"\x89PNG\r\n\x1a\n" + GOLDEN_TINY[8:]))
    crlf_mangled = GOLDEN_TINY.replace(b"\r\n", b"\n")
    assert "line endings" in str(_format_error(crlf_mangled))
    seven_bit = bytes([GOLDEN_TINY[0] & 0x7F]) + GOLDEN_TINY[1:]
    assert "7-bit" in str(_format_error(seven_bit))


def test_data_after_end() -> None:
    assert str(_format_error(GOLDEN_TINY + b"\x00")) == "unexpected data after END chunk"
    assert str(_format_error(GOLDEN_TINY + GOLDEN_TINY)) == "unexpected data after END chunk"


def test_non_empty_end_chunk() -> None:
    data = _file(b"{}", _frame(b"END ", b"x"), end=False)
    assert "END chunk must be empty" in str(_format_error(data))


def test_invalid_chunk_type() -> None:
    data = _file(b"{}", _frame(b"LA\x00N", b"x"))
    assert str(_format_error(data)) == "chunk 1 has an invalid type b'LA\\x00N'"


# --- header validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"[1,2]", "header is not a JSON object (got list)"),
        (b'"s"', "header is not a JSON object (got str)"),
        (b"{,}", "header is not valid JSON"),
        (b'{"a":NaN}', "header is not valid JSON: NaN is not allowed"),
        (b'{"a":1,"a":2}', "header is not valid: duplicate key 'a'"),
        (b'{"a":"\xff"}', "header is not valid UTF-8"),
        (b"\xef\xbb\xbf{}", "header is not valid"),
        (b"[" * 100_000 + b"]" * 100_000, "header is not"),
    ],
)
def test_bad_headers(header: bytes, message: str) -> None:
    assert str(_format_error(_file(header))).startswith(message)


def test_header_length_limits() -> None:
    huge = _file(b"{}", header_len=4_000_000_000)
    assert str(_format_error(huge)) == "header length 4000000000 exceeds the 1 MiB limit"
    assert str(_format_error(_file(b"{}", header_len=wlc.MAX_HEADER + 1))).endswith("exceeds the 1 MiB limit")
    assert str(_format_error(_file(b"{}", header_len=1))) == "header length 1 is too small (at least 2)"
    # A header of exactly the limit is accepted.
    exact = b'{"p":"' + b"x" * (wlc.MAX_HEADER - 8) + b'"}'
    assert len(exact) == wlc.MAX_HEADER
    assert loads(_file(exact))[0]["p"] == "x" * (wlc.MAX_HEADER - 8)


def test_huge_declared_lengths_are_refused_without_allocating(tmp_path: Path) -> None:
    over = _file(b"{}", b"LATN" + struct.pack("<I", 0xFFFFFFFF), end=False)
    assert str(_format_error(over)) == "chunk 1 (LATN) length 4294967295 exceeds the 256 MiB limit"
    # A legal but absent 200 MiB chunk in a 40-byte real file: the reader must neither ask the
    # stream for it in one read (BufferedReader would allocate it up front) nor allocate it.
    lying = _file(b"{}", b"LATN" + struct.pack("<I", 200 << 20) + b"tiny", end=False)
    path = tmp_path / "lying.wlc"
    path.write_bytes(lying)
    recorder = ReadRecorder(lying, max_piece=1 << 30)
    with pytest.raises(FormatError, match=r"^truncated: file ends inside chunk 1 \(LATN\)$"):
        read(recorder)
    assert max(recorder.requests) <= 1 << 20
    tracemalloc.start()
    try:
        with path.open("rb") as f, pytest.raises(FormatError, match="truncated"):
            read(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak allocation {peak} bytes for a {len(lying)}-byte file"


# --- compatibility -------------------------------------------------------------------------------


def test_version_3_refused() -> None:
    message = str(_format_error(_file(b"{}", version=(3, 0))))
    assert message == "unsupported .wlc format version 3.0 (this walloc reads 1.x and 2.x)"
    # The major is checked first: whatever follows in a 3.x file is not interpreted.
    assert "unsupported" in str(_format_error(wlc.MAGIC + b"\x03\x05garbage"))
    assert "version 0.0" in str(_format_error(_file(b"{}", version=(0, 0))))


def test_version_1_7_accepted_with_unknown_keys_and_ancillary_chunks() -> None:
    chunks = _frame(b"LATN", b"a") + _frame(b"zNEW", b"future data") + _frame(b"ICCP", b"c")
    reader = WlcReader(io.BytesIO(_file(b'{"future_key":{"x":[1]},"m":2}', chunks, version=(1, 7))))
    assert reader.version == (1, 7)
    assert reader.header == {"future_key": {"x": [1]}, "m": 2}
    assert list(reader.iter_chunks()) == [Chunk("LATN", b"a"), Chunk("ICCP", b"c")]


def test_unknown_critical_chunk_refused() -> None:
    data = _file(b"{}", _frame(b"LATN", b"a") + _frame(b"XTRA", b"must understand"))
    assert str(_format_error(data)).startswith("chunk 2 (XTRA) is an unknown critical chunk")
    for critical in (b"0ABC", b" ABC"):  # digits and space fail safe: critical
        assert "unknown critical" in str(_format_error(_file(b"{}", _frame(critical, b""))))


def test_damaged_ancillary_chunk_is_still_an_error() -> None:
    data = _file(b"{}", _frame(b"zNEW", b"x", crc=123))
    assert str(_format_error(data)) == "chunk 1 (zNEW) is corrupt: CRC mismatch"


# --- properties ----------------------------------------------------------------------------------

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_headers = st.dictionaries(st.text(max_size=10), _json, max_size=6)
_types = st.sampled_from(["LATN", "ALPH", "ICCP"])
_chunks = st.lists(st.builds(Chunk, _types, st.binary(max_size=300)), max_size=6)
_fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(header=_headers, chunks=_chunks)
def test_property_round_trip(header: dict[str, Any], chunks: list[Chunk]) -> None:
    data = dumps(header, chunks)
    assert loads(data) == (header, chunks)
    out = NonSeekable()
    assert write(out, header, chunks) == len(data)
    assert bytes(out.buf) == data


def _only_format_errors(data: bytes) -> None:
    try:
        header, chunks = loads(data)
    except FormatError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert isinstance(header, dict) and all(c.type in wlc.KNOWN_CHUNKS for c in chunks)


@_fast
@given(st.binary(max_size=200))
def test_property_arbitrary_bytes(data: bytes) -> None:
    _only_format_errors(data)
    _only_format_errors(wlc.MAGIC + data)
    _only_format_errors(wlc.MAGIC + b"\x01\x00" + data)


@_fast
@given(
    header=st.binary(max_size=40),
    frames=st.lists(
        st.tuples(st.binary(min_size=4, max_size=4), st.binary(max_size=20), st.none() | st.integers(0, 40)),
        max_size=4,
    ),
    end=st.booleans(),
    tail=st.binary(max_size=3),
)
def test_property_well_framed_garbage(
    header: bytes, frames: list[tuple[bytes, bytes, int | None]], end: bool, tail: bytes
) -> None:
    # Valid CRCs everywhere, so the reader gets past the checksums to the type/length/JSON rules.
    body = b"".join(_frame(t, d, length=n) for t, d, n in frames)
    _only_format_errors(_file(header, body, end=end) + tail)


@_fast
@given(data=st.data())
def test_property_damaged_valid_file(data: st.DataObject) -> None:
    original = _sample()
    pos = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != original[pos]))
    damaged = bytearray(original)
    damaged[pos] = value
    _format_error(bytes(damaged))
    cut = data.draw(st.integers(0, len(original) - 1))
    _format_error(original[:cut])


def test_on_damage_skips_a_corrupt_chunk_and_reads_on() -> None:
    data = bytearray(dumps({"a": 1}, [Chunk("LATN", b"one"), Chunk("LATN", b"two"), Chunk("LATN", b"three")]))
    data[data.index(b"two")] ^= 0x01
    reported: list[str] = []
    chunks = list(WlcReader(io.BytesIO(bytes(data))).iter_chunks(reported.append))
    assert [c.data for c in chunks] == [b"one", b"three"]
    assert reported == ["chunk 2 (LATN) is corrupt: CRC mismatch"]
    with pytest.raises(FormatError, match="chunk 2 \\(LATN\\) is corrupt: CRC mismatch"):
        list(WlcReader(io.BytesIO(bytes(data))).iter_chunks())  # without it, the first damage is fatal


# --- format 2.0: compact header and framing ------------------------------------------------------------
REFERENCE = Path(__file__).resolve().parents[1] / "formats" / "reference"
PHOTO_2 = REFERENCE / "wlc2-rgb-16x-v-srgb-16x16.wlc"  # the worked example of formats/wlc.md


def _frame2(code: int, data: bytes, *, length: bytes | None = None, crc: int | None = None) -> bytes:
    c = zlib.crc32(bytes([code]) + data) if crc is None else crc
    return bytes([code]) + (_varint(len(data)) if length is None else length) + data + struct.pack("<I", c)


def _varint(value: int) -> bytes:
    """LEB128, written independently of the module under test."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _file2(header: bytes = b"\x00", chunks: bytes = b"", *, version: tuple[int, int] = (2, 0), header_len: bytes | None = None, end: bool = True) -> bytes:
    head = wlc.MAGIC + bytes(version) + (_varint(len(header)) if header_len is None else header_len) + header
    return head + struct.pack("<I", zlib.crc32(head)) + chunks + (b"\x00" if end else b"")


def _sample2() -> bytes:
    header = {"modality": "image", "shape": [3, 4, 5], "delta": 0.125, "name": "café", "ok": True}
    chunks = [Chunk("LATN", b"\x00\x01\x02latent"), Chunk("ALPH", b""), Chunk("ICCP", b"icc!"), Chunk("LATN", b"z" * 200), Chunk("exif", b"e")]
    return dumps(header, chunks, major=2)


def test_2_0_is_written_by_default() -> None:
    with wlc.wlc_version(2):
        data = dumps({"a": 1}, [Chunk("LATN", b"x")])
    assert data == dumps({"a": 1}, [Chunk("LATN", b"x")], major=2)
    assert data == _file2(b'\x04{"a":1}', _frame2(0x01, b"x"))  # the independent encoder agrees
    assert loads(data) == ({"a": 1}, [Chunk("LATN", b"x")]) and WlcReader(io.BytesIO(data)).version == (2, 0)
    assert wlc.VERSION == (2, 0)


def test_2_0_round_trip_and_stored_form() -> None:
    header, chunks = loads(_sample2())
    assert header == {"modality": "image", "shape": [3, 4, 5], "delta": 0.125, "name": "café", "ok": True}
    assert [c.type for c in chunks] == ["LATN", "ALPH", "ICCP", "LATN", "exif"] and chunks[3].data == b"z" * 200
    # the encoder string is not stored in 2.0
    assert loads(dumps({"encoder": "walloc 0.1.0", "a": 1}, [], major=2))[0] == {"a": 1}


def test_2_0_writer_refuses_a_chunk_type_without_a_code() -> None:
    with pytest.raises(ValueError, match="no code in .wlc format 2.0"), WlcWriter(io.BytesIO(), {}, major=2) as writer:
        writer.write_chunk(Chunk("zNEW", b""))
    with pytest.raises(ValueError, match="writes .wlc format 1 or 2"):
        WlcWriter(io.BytesIO(), {}, major=3)


def test_2_0_truncation_at_every_offset() -> None:
    for data in (PHOTO_2.read_bytes(), _sample2()):
        for cut in range(len(data)):
            message = str(_format_error(data[:cut]))
            assert message.startswith(("truncated", "empty file")), (cut, message)


def test_2_0_crc_damage_of_the_header_and_of_each_chunk() -> None:
    data = _sample2()
    _, chunks = loads(data)
    damaged = bytearray(data)
    damaged[11] ^= 0x01  # a header byte
    assert str(_format_error(bytes(damaged))) == "header is corrupt: CRC mismatch"
    at = len(data) - 1  # the END byte; walk the chunks back to front by their known sizes
    for index in range(len(chunks), 0, -1):
        chunk = chunks[index - 1]
        at -= 4 + len(chunk.data)
        if chunk.data:
            damaged = bytearray(data)
            damaged[at] ^= 0x40
            assert str(_format_error(bytes(damaged))) == f"chunk {index} ({chunk.type.rstrip()}) is corrupt: CRC mismatch"
        at -= 1 + len(_varint(len(chunk.data)))


def test_2_0_every_single_byte_corruption_is_detected() -> None:
    data = PHOTO_2.read_bytes()
    for at in range(len(data)):
        for mask in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[at] ^= mask
            _format_error(bytes(damaged))


def test_2_0_overlong_and_oversize_varints() -> None:
    assert "overlong" in str(_format_error(_file2(b"\x00", header_len=b"\x81\x00")))
    assert "header length is an overlong varint" in str(_format_error(_file2(b"\x00", header_len=b"\x81\x80\x80\x00")))
    assert "header length exceeds the 1 MiB limit" in str(_format_error(_file2(b"\x00", header_len=_varint((1 << 20) + 1))))
    assert "too small" in str(_format_error(_file2(b"", header_len=b"\x00")))
    message = str(_format_error(_file2(chunks=_frame2(0x01, b"ab", length=b"\x82\x00"))))
    assert message == "chunk 1 (LATN) length is an overlong varint (not minimal)"
    assert "length exceeds the 256 MiB limit" in str(_format_error(_file2(chunks=b"\x01" + _varint((256 << 20) + 1))))
    assert "overlong" in str(_format_error(_file2(chunks=b"\x01\x80\x80\x80\x80\x80\x01")))


def test_2_0_huge_declared_length_is_refused_without_allocating() -> None:
    lying = _file2(chunks=b"\x01" + _varint(256 << 20) + b"tiny")
    tracemalloc.start()
    try:
        assert str(_format_error(lying)).startswith("truncated")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_2_0_unknown_codes_and_end() -> None:
    critical = _file2(chunks=_frame2(0x01, b"a") + _frame2(0x33, b"must understand"))
    assert str(_format_error(critical)).startswith("chunk 2 (code 0x33) is an unknown critical chunk")
    skipped = _file2(b"\x00", _frame2(0x01, b"a") + _frame2(0x9A, b"future data") + _frame2(0x03, b"c"))
    assert loads(skipped) == ({}, [Chunk("LATN", b"a"), Chunk("ICCP", b"c")])
    assert str(_format_error(_file2(chunks=_frame2(0x9A, b"x", crc=1)))) == "chunk 1 (code 0x9a) is corrupt: CRC mismatch"
    assert str(_format_error(_file2(chunks=_frame2(0x01, b"a")) + b"\x00")) == "unexpected data after END chunk"
    assert str(_format_error(_file2(end=False))) == "truncated: no END chunk"
    assert loads(_file2(b"\x00", version=(2, 9))) == ({}, [])  # a later minor of 2 reads


def test_2_0_bad_compact_headers_are_one_line() -> None:
    for header in (b"\x80", b'\x04{"a":1,"a":2}', b"\x04[1]", b'\x04{"a": 1}', b"\x01\x03abc"):
        assert str(_format_error(_file2(header))).startswith("header")


def test_2_0_skip_and_on_damage() -> None:
    data = bytearray(dumps({"a": 1}, [Chunk("LATN", b"one"), Chunk("LATN", b"two"), Chunk("LATN", b"three")], major=2))
    seen: list[tuple[str, bytes]] = []

    def skip(kind: str, head: bytes) -> bool:
        seen.append((kind, head))
        return head == b"tw"

    assert [c.data for c in WlcReader(io.BytesIO(bytes(data))).iter_chunks(skip=skip, peek=2)] == [b"one", b"three"]
    assert seen == [("LATN", b"on"), ("LATN", b"tw"), ("LATN", b"th")]
    data[data.index(b"two")] ^= 0x01
    reported: list[str] = []
    assert [c.data for c in WlcReader(io.BytesIO(bytes(data))).iter_chunks(reported.append)] == [b"one", b"three"]
    assert reported == ["chunk 2 (LATN) is corrupt: CRC mismatch"]


@_fast
@given(header=_headers, chunks=_chunks)
def test_property_2_0_round_trip(header: dict[str, Any], chunks: list[Chunk]) -> None:
    data = dumps(header, chunks, major=2)
    assert loads(data) == ({k: v for k, v in header.items() if k != "encoder"}, chunks)
    out = NonSeekable()
    assert write(out, header, chunks, major=2) == len(data) and bytes(out.buf) == data


@_fast
@given(st.binary(max_size=200))
def test_property_2_0_arbitrary_bytes(data: bytes) -> None:
    _only_format_errors(wlc.MAGIC + b"\x02\x00" + data)


@_fast
@given(header=st.binary(min_size=1, max_size=40), frames=st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=20)), max_size=4), end=st.booleans(), tail=st.binary(max_size=3))
def test_property_2_0_well_framed_garbage(header: bytes, frames: list[tuple[int, bytes]], end: bool, tail: bytes) -> None:
    _only_format_errors(_file2(header, b"".join(_frame2(code, data) for code, data in frames), end=end) + tail)


def test_2_0_spec_worked_example_matches_the_reference_file() -> None:
    """formats/wlc.md's "Format 2.0" worked example is the hex dump of this reference file."""
    data = PHOTO_2.read_bytes()
    text = SPEC.read_text()
    block = text.split("<!-- golden: wlc2-rgb-16x-v-srgb-16x16.wlc")[1].split("```text\n")[1].split("```")[0]
    assert bytes.fromhex("".join(line[10:].split("|")[0] for line in block.splitlines())) == data
    _, chunks = loads(data)
    latents = sum(len(c.data) for c in chunks if c.type == "LATN")
    assert f"{len(data)} bytes, of which {latents} are the coded" in text and f"{len(data) - latents} bytes of overhead" in text
    assert len(data) - latents <= 64


# --- format 2.0 files through the CLI --------------------------------------------------------------------
def test_cli_reads_2_0_files(tmp_path: Path) -> None:
    import json

    import numpy as np
    from typer.testing import CliRunner

    from walloc_cli.cli.app import app

    runner = CliRunner()
    source = REFERENCE / "wlc2-rgb-16x-v-srgb-16x16.src.png"
    result = runner.invoke(app, ["compress", str(source), "-o", str(tmp_path / "a.wlc"), "--no-psnr"])
    assert result.exit_code == 0, result.output
    data = (tmp_path / "a.wlc").read_bytes()
    assert data[8:10] == b"\x02\x00"
    result = runner.invoke(app, ["compress", str(source), "-o", str(tmp_path / "c.wlc"), "--no-psnr", "-e", "5"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.wlc").read_bytes()[8:10] == b"\x02\x02"  # effort 5: the ctx payload
    result = runner.invoke(app, ["compress", str(source), "-o", str(tmp_path / "old.wlc"), "--no-psnr", "--wlc-version", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "old.wlc").read_bytes()[8:10] in (b"\x01\x00", b"\x01\x03")
    result = runner.invoke(app, ["info", "--json", str(tmp_path / "a.wlc")])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    record = record[0] if isinstance(record, list) else record
    latents = sum(entry["bytes"] for kind, entry in record["chunks"].items() if kind == "LATN")
    assert record["format_version"] == "2.0" and record["payload_bytes"] == latents and record["bytes"] == len(data)
    assert record["bytes"] - record["payload_bytes"] <= 64
    for command in (["info", str(PHOTO_2)], ["verify", str(PHOTO_2)], ["latents", str(PHOTO_2), "-O", str(tmp_path / "lat")],
                    ["decompress", str(tmp_path / "a.wlc"), "-o", str(tmp_path / "a.png")], ["decompress", str(tmp_path / "old.wlc"), "-o", str(tmp_path / "old.png")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
    assert np.load(tmp_path / "lat" / "wlc2-rgb-16x-v-srgb-16x16.npy").shape == (12, 2, 2)
    from walloc_cli.files.images import read_image

    assert np.array_equal(read_image(tmp_path / "a.png").pixels, read_image(tmp_path / "old.png").pixels)  # same pixels either way
    bad = tmp_path / "bad.wlc"
    bad.write_bytes(data[:-3])
    result = runner.invoke(app, ["decompress", str(bad), "-o", str(tmp_path / "b.png")])
    assert result.exit_code != 0 and "truncated" in result.output and "Traceback" not in result.output
