"""``walloc verify`` and :func:`walloc_cli.api.verify.verify_file`: every reference file (images and
audio) verifies; each kind of damage is named; nothing is written; exit 1 when any file is bad."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from walloc_cli.cli.app import app
from walloc_cli.format.container import Chunk, dumps, loads
from walloc_cli.errors import FormatError
from walloc_cli.api.verify import check_decoded_output, verify_file

REFERENCE = Path(__file__).resolve().parent.parent / "formats" / "reference"
IMAGE = REFERENCE / "rgb-16x-48x40.wlc"
AUDIO = REFERENCE / "audio" / "mono-8k-4001.wlc"


def invoke(*args: object) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def reframed(data: bytes, header_edit=None, chunk_edit=None) -> bytes:  # type: ignore[no-untyped-def]
    """``data`` with its header and/or chunks edited and every CRC made right again."""
    header, chunks = loads(data)
    header = copy.deepcopy(header)
    if header_edit:
        header_edit(header)
    if chunk_edit:
        chunks = chunk_edit(chunks)
    return dumps(header, chunks)


@pytest.mark.parametrize("path", sorted(REFERENCE.glob("*.wlc")) + sorted((REFERENCE / "audio").glob("*.wlc")), ids=lambda p: p.name)
def test_reference_files_verify(path: Path) -> None:
    report = verify_file(path)
    assert report.ok, report.problem
    assert report.modality in ("image", "audio") and report.model
    # 1.3: the sRGB flag, tight latent bits, the jxl payload; 1.2: exif/xmp chunks
    assert report.format_version == ("2.2" if path.name.startswith("wlc22-") else "2.1" if path.name.startswith("wlc21-") else "2.0" if path.name.startswith("wlc2-") else "1.3" if "srgb-flag" in path.name or "tight-bits" in path.name or "jxl" in path.name else "1.2" if "exif" in path.name else "1.0")
    assert report.bytes == path.stat().st_size and report.chunks >= 1


def _other_sha(header: dict) -> None:
    header["model"]["sha256"] = "0" * 64


def _unknown_model(header: dict) -> None:
    header["model"].update(name="mystery-8x", sha256="0" * 64)


def _garbage_payload(chunks: list[Chunk]) -> list[Chunk]:
    return [Chunk(c.type, b"RIFF\x10\x00\x00\x00WEBPVP8L garbage") if c.type in ("LATN", "AUDB") else c for c in chunks]


@pytest.mark.parametrize(
    ("source", "damage", "expected"),
    [
        (IMAGE, lambda d: d[:-5], "truncated"),
        (IMAGE, lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], "CRC mismatch"),
        (IMAGE, lambda d: d[:8] + b"\x03" + d[9:], "unsupported .wlc format version 3.0"),
        (IMAGE, lambda d: b"GIF89a" + d[6:], "not a .wlc file"),
        (IMAGE, lambda d: d[:-4] + b"\0\0\0\0", "(END) is corrupt: CRC mismatch"),
        (IMAGE, lambda d: reframed(d, header_edit=_other_sha), "(a different version)"),
        (AUDIO, lambda d: reframed(d, header_edit=_unknown_model), "'mystery-8x' (sha256 000000000000…), which is not installed"),
        (IMAGE, lambda d: reframed(d, chunk_edit=_garbage_payload), "does not decode"),
        (IMAGE, lambda d: reframed(d, header_edit=lambda h: h["image"].update(width=1 << 20)), "invalid header"),
        (AUDIO, lambda d: reframed(d, header_edit=lambda h: h["audio"].update(frames=1 << 39)), "truncated"),
        (AUDIO, lambda d: d[: len(d) // 2], "truncated"),
    ],
)
def test_damage_is_named(tmp_path: Path, source: Path, damage, expected: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.wlc"
    bad.write_bytes(damage(source.read_bytes()))
    report = verify_file(bad)
    assert not report.ok and expected in (report.problem or ""), report.problem
    assert [p.name for p in tmp_path.iterdir()] == ["bad.wlc"]  # nothing written beside it


def test_missing_file() -> None:
    report = verify_file(Path("/nonexistent/x.wlc"))
    assert not report.ok and report.problem == "no such file or directory"


def test_cli_verify_ok_and_bad(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wlc"
    bad.write_bytes(IMAGE.read_bytes()[:-1])
    result = invoke("verify", IMAGE, bad, AUDIO)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"{IMAGE}: ok", f"{AUDIO}: ok"]
    assert result.stderr.splitlines() == [f"walloc: {bad}: truncated: file ends inside chunk 2 (END)"]
    good = invoke("verify", IMAGE, AUDIO)
    assert good.exit_code == 0 and good.stderr == ""
    assert invoke("verify", "--quiet", IMAGE).stdout == ""


def test_cli_verify_json_and_recursive(tmp_path: Path) -> None:
    (tmp_path / "a.wlc").write_bytes(IMAGE.read_bytes())
    (tmp_path / "notes.txt").write_text("x")
    result = invoke("verify", "-r", "--json", tmp_path)
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1 and records[0]["ok"] is True and records[0]["model"] == "rgb-16x"
    assert result.stderr.strip() == f"walloc: {tmp_path / 'notes.txt'}: skipped (not a .wlc file)"
    assert invoke("verify", tmp_path).exit_code == 1  # a folder without -r


def test_check_decoded_output(tmp_path: Path) -> None:
    from walloc_cli.api.files import decompress_file

    report = decompress_file(IMAGE, tmp_path / "x.png")
    check_decoded_output(report)
    report.width += 1
    with pytest.raises(FormatError, match="expected 49x40"):
        check_decoded_output(report)
    audio = decompress_file(AUDIO, tmp_path / "x.wav")
    check_decoded_output(audio)
    audio.frames -= 1
    with pytest.raises(FormatError, match="4000 frames"):
        check_decoded_output(audio)
    (tmp_path / "x.wav").write_bytes(b"")
    with pytest.raises(FormatError, match="missing or empty"):
        check_decoded_output(audio)


def test_check_decoded_output_refuses_a_partial_decode(tmp_path: Path) -> None:
    """The output of a --start/--duration decode is consistent with its report, yet it is not the
    whole input: the check that gates --delete-input must fail."""
    from walloc_cli.api.files import decompress_file

    report = decompress_file(AUDIO, tmp_path / "x.wav", start=0.1, duration=0.2)
    assert report.partial and report.frames == 1600
    with pytest.raises(FormatError, match="holds only part of the input"):
        check_decoded_output(report)
    whole = decompress_file(AUDIO, tmp_path / "y.wav", start=0.0)  # a range that is the whole file is still a range
    with pytest.raises(FormatError, match="holds only part of the input"):
        check_decoded_output(whole)
    check_decoded_output(decompress_file(AUDIO, tmp_path / "z.wav"))
