"""Hostile ``.wlc`` files: truncated at every byte, mutated at random (hypothesis), re-framed with
valid CRCs so the mutation reaches the header checks, the payload decoder and the model, and
decompression bombs, and every header field set to an absurd value (0, -1, 2**31, 2**63, NaN as
the bare token and as a string, text, booleans, null, huge numbers, lists, objects, missing)
through the four reading commands of the CLI. The only acceptable outcomes are a decode or a
clean walloc error: one line ``walloc: FILE: problem`` and exit code 1 (checked through
:func:`walloc_cli.api.verify.verify_file`, which runs the ``decompress`` code path, or through the
``walloc`` app itself; any other exception fails the test). ``bench/fuzz.py`` runs the same
ideas through the CLI on 100,000 inputs.
"""

from __future__ import annotations

import copy
import json
import resource
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from walloc_cli.api.files import decompress_file, describe
from walloc_cli.codecs.image import decode_image
from walloc_cli.cli.app import app
from walloc_cli.format.container import MAGIC, Chunk, dumps, loads
from walloc_cli.errors import FormatError
from walloc_cli.api.verify import verify_file

REFERENCE = Path(__file__).resolve().parent.parent / "formats" / "reference"
FILES = sorted(REFERENCE.glob("*.wlc")) + sorted((REFERENCE / "audio").glob("*.wlc")) + sorted((REFERENCE / "volume").glob("*.wlc"))
SOURCES = {path.name: path.read_bytes() for path in FILES}
SLOW = 10.0  # seconds: no single bad input may take longer (they take milliseconds)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check(tmp_path: Path, data: bytes) -> Any:
    """Verify ``data``; any exception other than a reported problem propagates (a bug)."""
    target = tmp_path / "fuzz.wlc"
    target.write_bytes(data)
    started = time.perf_counter()
    report = verify_file(target)
    assert time.perf_counter() - started < SLOW
    if not report.ok:
        assert report.problem and "\n" not in report.problem and "0x7f" not in report.problem, report.problem
        assert not report.problem.startswith("internal error"), report.problem  # a bug, even if reported in one line
    return report


@pytest.mark.parametrize("name", ["gray-1x1.wlc", "mono-8k-4001.wlc"])
def test_truncation_at_every_offset(tmp_path: Path, name: str) -> None:
    data = SOURCES[name]
    for end in range(len(data)):
        report = check(tmp_path, data[:end])
        assert not report.ok, f"a {end}-byte prefix of {name} verified"
        assert report.problem.startswith(("truncated", "empty file", "not a .wlc file")), (end, report.problem)
    assert check(tmp_path, data).ok


def test_the_whole_file_decodes_to_the_reference() -> None:
    expected = np.asarray(Image.open(REFERENCE / "rgb-16x-48x40.out.png"))
    image = decode_image(SOURCES["rgb-16x-48x40.wlc"])
    assert np.array_equal(np.moveaxis(image.pixels, 0, -1), expected)


@FUZZ
@given(name=st.sampled_from(sorted(SOURCES)), edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8))
def test_raw_byte_mutations_are_refused(tmp_path: Path, name: str, edits: list[tuple[int, int]]) -> None:
    data = bytearray(SOURCES[name])
    for position, value in edits:
        data[position % len(data)] = value
    report = check(tmp_path, bytes(data))
    # every byte is under a CRC-32, which catches any change of up to 32 consecutive bits
    assert report.ok == (bytes(data) == SOURCES[name])


def _key_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    found = []
    for key, value in items:
        found += [prefix + (key,)] + _key_paths(value, prefix + (key,))
    return found


JSON_VALUES = st.one_of(
    st.integers(), st.sampled_from([0, -1, 1 << 31, 1 << 40, 1 << 63, 10**40]),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6), st.none(), st.booleans(),
    st.lists(st.integers(-3, 1 << 20), max_size=4), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@FUZZ
@given(name=st.sampled_from(sorted(SOURCES)), pick=st.integers(0, 10**6), value=JSON_VALUES, delete=st.booleans())
def test_header_mutations_with_valid_crcs(tmp_path: Path, name: str, pick: int, value: Any, delete: bool) -> None:
    header, chunks = loads(SOURCES[name])
    header = copy.deepcopy(header)
    path = _key_paths(header)[pick % len(_key_paths(header))]
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    check(tmp_path, dumps(header, chunks))


@FUZZ
@given(name=st.sampled_from(sorted(SOURCES)), other=st.sampled_from(sorted(SOURCES)), pick=st.integers(0, 100), action=st.sampled_from(["flip", "cut", "empty", "swap", "drop", "twice"]), where=st.integers(0, 1 << 20))
def test_chunk_mutations_with_valid_crcs(tmp_path: Path, name: str, other: str, pick: int, action: str, where: int) -> None:
    header, chunks = loads(SOURCES[name])
    index = pick % len(chunks)
    chunk = chunks[index]
    if action == "flip":
        body = bytearray(chunk.data)
        body[where % len(body)] ^= 1 << (where % 8)
        chunks[index] = Chunk(chunk.type, bytes(body))
    elif action == "cut":
        chunks[index] = Chunk(chunk.type, chunk.data[: where % len(chunk.data)])
    elif action == "empty":
        chunks[index] = Chunk(chunk.type, b"")
    elif action == "swap":
        donors = loads(SOURCES[other])[1]
        chunks[index] = Chunk(chunk.type, donors[pick % len(donors)].data)
    elif action == "drop":
        del chunks[index]
    else:
        chunks.insert(index, chunk)
    check(tmp_path, dumps(header, chunks))


# --- every header field set to an absurd value, through the CLI ------------------------------------
NAN = "__nan_token__"  # written as the bare token NaN, which is not JSON
MISSING = object()
ABSURD: list[Any] = [0, -1, 1 << 31, 1 << 63, NAN, "NaN", "x", True, None, 1e308, 10**400, [1, 2], {"a": 1}, MISSING]
COMMANDS = ("decompress", "info", "verify", "latents")
SWEPT = ["rgba-17x9.wlc", "mono-8k-4001.wlc", "ms-2x-uint16-8x40x40.wlc"]  # image (with alpha), audio, volume


def frame(header: dict[str, Any], chunks: list[Chunk]) -> bytes:
    """A ``.wlc`` file with every CRC right whose header may hold the bare token ``NaN``."""
    raw = json.dumps(header, sort_keys=True).replace(f'"{NAN}"', "NaN").encode()
    head = MAGIC + struct.pack("<BBI", 1, 0, len(raw)) + raw
    body = [head, struct.pack("<I", zlib.crc32(head))]
    for chunk in chunks + [Chunk("END ", b"")]:
        kind = chunk.type.encode()
        body += [kind, struct.pack("<I", len(chunk.data)), chunk.data, struct.pack("<I", zlib.crc32(chunk.data, zlib.crc32(kind)))]
    return b"".join(body)


def run_cli(command: str, target: Path, tmp_path: Path) -> str | None:
    """``walloc COMMAND target`` in this process: None for exit 0, else the one line's problem.
    Anything else (an escaped exception, another exit code, several lines) fails the test."""
    out = tmp_path / "out"
    args = {"decompress": ["decompress", str(target), "-O", str(out), "-f"], "info": ["info", str(target)],
            "verify": ["verify", str(target)], "latents": ["latents", str(target), "-O", str(out), "-f"]}[command]
    started = time.perf_counter()
    result = CliRunner().invoke(app, args)
    assert time.perf_counter() - started < SLOW, (command, target)
    assert result.exception is None or isinstance(result.exception, SystemExit), (command, repr(result.exception))
    if result.exit_code == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"walloc: {target}: "), (command, result.exit_code, result.stderr)
    return lines[0][len(f"walloc: {target}: "):]


def sweep() -> list[tuple[str, tuple[Any, ...], Any, str]]:
    """A deterministic sample: every field (any depth) of an image, an audio and a volume file,
    each set once, the absurd values and the four commands taken in turn."""
    cases = []
    for k, name in enumerate(SWEPT):
        header = loads(SOURCES[name])[0]
        for i, path in enumerate(_key_paths(header) + [("modality",)]):
            cases.append((name, path, ABSURD[(i + 5 * k) % len(ABSURD)], COMMANDS[(i + k) % len(COMMANDS)]))
    return cases


def test_every_header_field_set_to_an_absurd_value_is_one_line_from_the_cli(tmp_path: Path) -> None:
    refused: dict[str, int] = {}
    for name, path, value, command in sweep():
        header, chunks = loads(SOURCES[name])
        parent = header
        for key in path[:-1]:
            parent = parent[key]
        if value is MISSING:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(value)
        target = tmp_path / "fuzz.wlc"
        target.write_bytes(frame(header, chunks))
        problem = run_cli(command, target, tmp_path)
        if problem is not None:
            refused[command] = refused.get(command, 0) + 1
            assert "0x7f" not in problem and not problem.startswith("internal error"), problem  # no object reprs, no bugs
    assert set(refused) == set(COMMANDS) and sum(refused.values()) > 50, refused


@pytest.mark.parametrize("command", COMMANDS)
def test_a_nan_token_in_the_header_is_refused_from_the_cli(tmp_path: Path, command: str) -> None:
    header, chunks = loads(SOURCES["mono-8k-4001.wlc"])
    header["normalisation"]["gain"] = NAN
    (tmp_path / "nan.wlc").write_bytes(frame(header, chunks))
    assert run_cli(command, tmp_path / "nan.wlc", tmp_path) == "header is not valid JSON: NaN is not allowed"


# --- decompression bombs: absurd sizes are refused before anything is allocated ----------------
def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _image(edit: Any) -> bytes:
    header, chunks = loads(SOURCES["rgb-16x-48x40.wlc"])
    header = copy.deepcopy(header)
    edit(header)
    return dumps(header, chunks)


def _declare(height: int, width: int) -> Any:
    def edit(header: dict) -> None:
        header["image"].update(height=height, width=width)
        header["latent"]["shape"] = [header["latent"]["shape"][0], -(-height // 8), -(-width // 8)]

    return edit


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_image(_declare(16384, 16384)), "268435456 pixels, more than the limit of 80000000 (raise it with --max-pixels)"),  # within the format, above the default limit
        (_image(_declare(131064, 131064)), "exceeds the 268435456-pixel limit"),
        (_image(_declare(1, 1 << 40)), "invalid header: width="),
        (_image(lambda h: h["latent"].update(shape=[12, 1 << 30, 1 << 30])), "latent shape"),
        (b"\x89WLC\r\n\x1a\n\x01\x00" + (1 << 31).to_bytes(4, "little") + b"{}", "header length 2147483648 exceeds"),
        (dumps({"modality": "image"}, [])[:-12] + b"LATN" + (200 << 20).to_bytes(4, "little"), "truncated"),
    ],
    ids=["268MP-no-payload", "131064-square", "2^40-wide", "2^60-latents", "2GB-header", "200MB-chunk-in-40-bytes"],
)
def test_bombs_are_refused_cheaply(tmp_path: Path, data: bytes, expected: str) -> None:
    before = _peak_mib()
    report = check(tmp_path, data)
    assert not report.ok and expected in report.problem, report.problem
    assert _peak_mib() - before < 100, "a bomb made walloc allocate"


def test_audio_bomb_declaring_2_to_40_frames(tmp_path: Path) -> None:
    header, chunks = loads(SOURCES["mono-8k-4001.wlc"])
    header["audio"]["frames"] = 1 << 40
    before = _peak_mib()
    report = check(tmp_path, dumps(header, chunks))
    assert not report.ok and report.problem.startswith("truncated: 4001 of 1099511627776 frames"), report.problem
    assert _peak_mib() - before < 100


def test_keep_going_fills_no_more_silence_than_the_damaged_blocks_held(tmp_path: Path) -> None:
    """-F on a file declaring 2**40 frames whose one block is damaged: the block stood for at most
    ``latent.block`` frames, so this is a truncated file, not 2**40 frames of silence to write."""
    header, chunks = loads(SOURCES["mono-8k-4001.wlc"])
    header["audio"]["frames"] = 1 << 40
    data = bytearray(dumps(header, chunks))
    data[data.index(chunks[0].data) + 40] ^= 0xFF  # the only AUDB chunk fails its CRC
    (tmp_path / "bomb.wlc").write_bytes(bytes(data))
    before, started = _peak_mib(), time.perf_counter()
    with pytest.raises(FormatError, match=r"^truncated: 0 of 1099511627776 frames decoded$"):
        decompress_file(tmp_path / "bomb.wlc", tmp_path / "out.wav", keep_going=True)
    assert time.perf_counter() - started < SLOW and _peak_mib() - before < 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.wlc"]  # no output, no .part
    header["audio"]["frames"] = 4001  # the honest file: the damaged block becomes silence
    data = bytearray(dumps(header, chunks))
    data[data.index(chunks[0].data) + 40] ^= 0xFF
    (tmp_path / "damaged.wlc").write_bytes(bytes(data))
    report = decompress_file(tmp_path / "damaged.wlc", tmp_path / "out.wav", keep_going=True)
    assert report.frames == 4001 and len(report.damaged) == 1 and "frames 0..4000 replaced by silence" in report.damaged[0]
    assert not sf.read(tmp_path / "out.wav")[0].any()


# --- walloc info (api.describe) on lying headers, found by bench/fuzz.py ------------------------
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda h: h["codec"].update(levels=2000), "invalid header: codec levels=2000 is not an integer in 1..8"),
        (lambda h: h["codec"].update(levels=1 << 40), "invalid header: codec levels=1099511627776"),  # used to hang
        (lambda h: h["codec"].update(dims=2, channels=64, levels=8), "invalid header: codec channels * 2**(dims*levels)"),
        (lambda h: h["codec"].update(shape=3), "invalid header: unknown codec config fields: ['shape']"),
        (lambda h: h.update(codec=[1]), "invalid header: missing codec table"),
        (lambda h: h.pop("codec"), "invalid header: missing codec table"),
    ],
    ids=["levels-2000", "levels-2^40", "wavelet-channels", "unknown-field", "codec-not-a-table", "no-codec"],
)
def test_info_on_a_lying_codec_table(tmp_path: Path, edit: Any, expected: str) -> None:
    header, chunks = loads(SOURCES["mono-8k-4001.wlc"])
    edit(header)
    (tmp_path / "x.wlc").write_bytes(dumps(header, chunks))
    started = time.perf_counter()
    with pytest.raises(FormatError) as caught:
        describe(tmp_path / "x.wlc")
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value), str(caught.value)
    assert time.perf_counter() - started < SLOW


def test_info_refuses_an_image_whose_codec_table_lies(tmp_path: Path) -> None:
    """The ``codec`` table is a copy of the model's configuration (formats/wlc.md): one that is
    impossible, or that contradicts the model the file names, makes the file invalid for every
    reader alike (one validator), instead of being ignored by some (it used to drop a line of
    ``walloc info``) and believed by others (``walloc latents`` without the model installed)."""
    header, chunks = loads(SOURCES["rgb-16x-48x40.wlc"])
    header["codec"]["levels"] = 1 << 40
    (tmp_path / "x.wlc").write_bytes(dumps(header, chunks))
    started = time.perf_counter()
    with pytest.raises(FormatError, match=r"^invalid header: codec levels=1099511627776 is not an integer in 1\.\.8$"):
        describe(tmp_path / "x.wlc")
    assert time.perf_counter() - started < SLOW


@pytest.mark.parametrize(
    ("name", "image", "expected"),
    [
        ("gray-1x1.wlc", {"mode": "audio"}, "invalid header: mode='audio' is not one of 1, L, LA, RGB"),
        ("gray-as-rgb-16x-v-16x16.wlc", {"bit_depth": 16}, "invalid header: mode RGB has bit depth 8, not bit_depth=16"),
        ("rgb-16x-48x40.wlc", {"channels": 1}, "invalid header: mode RGB has 3 channel(s), not channels=1"),
        ("rgb-16x-48x40.wlc", {"mode": "RGBA"}, "invalid header: mode RGBA needs alpha table"),
        ("gray-1x1.wlc", {"mode": ["L"]}, "invalid header: mode=['L']"),
    ],
    ids=["mode-audio", "rgb-16-bit", "rgb-1-channel", "rgba-without-alpha", "mode-not-a-string"],
)
def test_image_mode_is_validated(tmp_path: Path, name: str, image: dict, expected: str) -> None:
    header, chunks = loads(SOURCES[name])
    header["image"].update(image)
    report = check(tmp_path, dumps(header, chunks))
    assert not report.ok and report.problem.startswith(expected), report.problem
    with pytest.raises(FormatError, match="^invalid header: "):
        describe(tmp_path / "fuzz.wlc")
