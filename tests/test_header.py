"""One header validator for every reader (walloc_cli/format/header.py), the chunk rules of each modality,
and a batch that one bad file cannot stop (issue 14, items 3, 8 and 13).

Every bad file here is CRC-valid: the framing is intact, only what the header or the chunks say
is wrong. Each must give exit code 1 and one line ``walloc: FILE: problem`` from ``decompress``,
``info``, ``verify`` and ``latents`` alike, never a traceback.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from typer.testing import CliRunner

from walloc_cli.api import files as api
from walloc_cli.codecs.image import decode_image
from walloc_cli.cli.app import app
from walloc_cli.format.container import Chunk, dumps, loads

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "formats" / "reference"
IMAGE = REFERENCE / "rgba-17x9.wlc"  # RGBA: one LATN and one ALPH chunk
GRAY = REFERENCE / "gray-1x1.wlc"
AUDIO = REFERENCE / "audio" / "mono-8k-4001.wlc"
VOLUME = REFERENCE / "volume" / "ms-2x-uint16-8x40x40.wlc"
COMMANDS = ("decompress", "info", "verify", "latents")


def run(command: str, target: Path, tmp_path: Path, *extra: str) -> Any:
    """``walloc COMMAND target`` in this process; no exception may escape it."""
    args = {
        "decompress": ["decompress", str(target), "-O", str(tmp_path / "out"), "-f"],
        "info": ["info", str(target)],
        "verify": ["verify", str(target)],
        "latents": ["latents", str(target), "-O", str(tmp_path / "latents"), "-f"],
    }[command]
    result = CliRunner().invoke(app, args + list(extra))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def one_line(result: Any, target: Path) -> str:
    """The problem of a failed command: exit 1 and exactly one line ``walloc: TARGET: problem``."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, (result.exit_code, result.stderr)
    assert lines[0].startswith(f"walloc: {target}: ") and "Traceback" not in result.output, lines[0]
    return lines[0][len(f"walloc: {target}: "):]


def edited(source: Path, edit: Callable[[dict[str, Any], list[Chunk]], Any], folder: Path, name: str = "bad.wlc") -> Path:
    """``source`` with ``edit(header, chunks)`` applied in place, CRCs recomputed."""
    header, chunks = loads(source.read_bytes())
    header = copy.deepcopy(header)
    edit(header, chunks)
    target = folder / name
    target.write_bytes(dumps(header, chunks))
    return target


def setter(*path: Any, value: Any) -> Callable[[dict[str, Any], list[Chunk]], None]:
    def edit(header: dict[str, Any], chunks: list[Chunk]) -> None:
        node = header
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


# --- one validator: every command gives the same one line ----------------------------------------
CASES = [
    # item 3's own examples
    (IMAGE, setter("codec", value=5), "invalid header: missing codec table"),  # info: AttributeError before
    (AUDIO, setter("audio", "format", value=["WAV"]), "invalid header: format=['WAV']"),  # decompress: TypeError before
    # image
    (IMAGE, setter("image", "source_format", value={"a": 1}), "invalid header: source_format="),
    (IMAGE, setter("normalisation", "peak", value=65535), "invalid header: normalisation peak=65535, expected 255"),
    (IMAGE, setter("model", "sha256", value="NaN"), "invalid header: model sha256='NaN' is not 16 or 64 hex digits"),
    (IMAGE, setter("latent", "shape", value=[11, 2, 3]), "invalid header: latent shape [11, 2, 3] does not match codec latent_dim=12"),
    (IMAGE, setter("codec", "dims", value=3), "invalid header: codec dims=3: an image file needs a 2-D model"),
    (IMAGE, lambda h, c: h["codec"].pop("bits"), "invalid header: codec bits=None is not an integer in 2..15"),
    (IMAGE, setter("codec", "decoder_blocks", value=3), "invalid header: codec table does not match model 'rgb-16x': decoder_blocks=3 where the model has 4"),
    # audio
    (AUDIO, setter("audio", "subtype", value=True), "invalid header: subtype=True"),
    (AUDIO, setter("audio", "format", value="../x"), "invalid header: format='../x'"),
    (AUDIO, setter("codec", "channels", value=2), "invalid header: codec channels=2: an audio model codes one channel"),
    # volume, including what only the writers read
    (VOLUME, setter("volume", "meta", "spacing", value="1 mm"), "invalid header: meta.spacing='1 mm'"),
    (VOLUME, setter("volume", "meta", "nifti_header", value="AAAA"), "invalid header: meta.nifti_header is not a base64 NIfTI-1 or NIfTI-2 header"),
    (VOLUME, setter("volume", "meta", "extratags", value=[[305, 2, 1, {"a": 1}]]), "invalid header: meta.extratags entry"),
    (VOLUME, setter("volume", "meta", "resolution", value=[0, 1]), "invalid header: meta.resolution=[0, 1]"),
    (VOLUME, setter("codec", "step_input", value=False), "invalid header: codec table does not match model 'ms-3d-2x-v': step_input=False where the model has True"),
    (VOLUME, setter("volume", "kind", value="x"), "invalid header: kind='x' is not one of ct, mri, multispectral, volume"),
    (VOLUME, setter("normalisation", "max", value=1e10), "invalid header: normalisation range 56..1e+10 does not fit uint16"),
    (VOLUME, setter("volume", "meta", "zooms", value=["NaN"]), "invalid header: meta.zooms=['NaN']"),
    (VOLUME, setter("latent", "encode_margin", value=-1), "invalid header: encode_margin=-1 is not an integer in 0..65536"),
]


@pytest.mark.parametrize(("source", "edit", "expected"), CASES, ids=[f"{src.stem}-{i}" for i, (src, _, _) in enumerate(CASES)])
def test_every_reader_refuses_a_bad_header_field_in_one_line(tmp_path: Path, source: Path, edit: Any, expected: str) -> None:
    target = edited(source, edit, tmp_path)
    for command in COMMANDS:
        problem = one_line(run(command, target, tmp_path), target)
        assert problem.startswith(expected), (command, problem)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_validator_imports_no_torch() -> None:
    code = "import sys, walloc_cli.format.header; assert not {'torch', 'soundfile', 'tifffile'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_a_bare_audio_header_with_start_names_what_is_wrong(tmp_path: Path) -> None:
    """Item 13: not "only audio can be decoded from a given time" for a file that is audio."""
    target = tmp_path / "bare.wlc"
    target.write_bytes(dumps({"modality": "audio"}, []))
    result = run("decompress", target, tmp_path, "--start", "1")
    assert one_line(result, target) == "invalid header: missing audio/latent/model table"


def test_start_on_an_image_still_says_it_is_for_audio(tmp_path: Path) -> None:
    result = run("decompress", GRAY, tmp_path, "--start", "1")
    assert one_line(result, GRAY) == "--start and --duration are for audio; this file holds an image"


# --- chunk rules (item 8) --------------------------------------------------------------------------
def _duplicate(kind: str) -> Callable[[dict[str, Any], list[Chunk]], None]:
    def edit(header: dict[str, Any], chunks: list[Chunk]) -> None:
        chunks.append(next(c for c in chunks if c.type == kind))

    return edit


def _add_iccp(times: int) -> Callable[[dict[str, Any], list[Chunk]], None]:
    def edit(header: dict[str, Any], chunks: list[Chunk]) -> None:
        chunks += [Chunk("ICCP", zlib.compress(b"not really a profile"))] * times

    return edit


def _insert(kind: str, donor: Path) -> Callable[[dict[str, Any], list[Chunk]], None]:
    def edit(header: dict[str, Any], chunks: list[Chunk]) -> None:
        chunks.insert(0, Chunk(kind, loads(donor.read_bytes())[1][0].data))

    return edit


@pytest.mark.parametrize(
    ("source", "edit", "expected"),
    [
        (IMAGE, _duplicate("ALPH"), "more than 1 ALPH chunk (the format allows 1)"),
        (GRAY, _add_iccp(2), "more than 1 ICCP chunk (the format allows 1)"),
        (GRAY, _insert("ALPH", IMAGE), "an ALPH chunk is present but the header declares none"),
        (GRAY, _insert("VOLT", VOLUME), "a VOLT chunk has no place in an image file"),
        (AUDIO, _insert("LATN", GRAY), "a LATN chunk has no place in an audio file"),
        (VOLUME, _insert("AUDB", AUDIO), "an AUDB chunk has no place in a volume file"),
    ],
    ids=["two-ALPH", "two-ICCP", "ALPH-without-alpha", "VOLT-in-image", "LATN-in-audio", "AUDB-in-volume"],
)
def test_chunks_the_modality_does_not_allow_are_refused(tmp_path: Path, source: Path, edit: Any, expected: str) -> None:
    target = edited(source, edit, tmp_path)
    for command in COMMANDS:
        assert one_line(run(command, target, tmp_path), target) == expected, command


def test_one_iccp_chunk_is_still_read(tmp_path: Path) -> None:
    target = edited(GRAY, _add_iccp(1), tmp_path)
    image = decode_image(target.read_bytes())
    assert image.icc_profile == b"not really a profile"


# --- the batch goes on (item 3) ----------------------------------------------------------------------
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_one_bad_file_does_not_stop_a_decompress_batch(tmp_path: Path, jobs: str) -> None:
    bad = edited(AUDIO, setter("audio", "format", value=["WAV"]), tmp_path)
    good = [tmp_path / "good1.wlc", tmp_path / "good2.wlc"]
    good[0].write_bytes(GRAY.read_bytes())
    good[1].write_bytes(AUDIO.read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["decompress", str(bad), *map(str, good), "-O", str(out), "--jobs", jobs])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [f"walloc: {bad}: invalid header: format=['WAV']"]
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.wav"]


def test_an_unexpected_exception_is_one_internal_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a codec path (here injected: a TypeError for one file) is reported for that file
    as an internal error with its type, and the other files are still converted."""
    real = api.decompress_file

    def buggy(src: Path, *args: Any, **kwargs: Any) -> Any:
        if Path(src).name == "buggy.wlc":
            raise TypeError("'NoneType' object is not subscriptable")
        return real(src, *args, **kwargs)

    monkeypatch.setattr(api, "decompress_file", buggy)
    (tmp_path / "buggy.wlc").write_bytes(GRAY.read_bytes())
    (tmp_path / "fine.wlc").write_bytes(GRAY.read_bytes())
    result = CliRunner().invoke(app, ["decompress", str(tmp_path / "buggy.wlc"), str(tmp_path / "fine.wlc"), "--jobs", "1"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"walloc: {tmp_path / 'buggy.wlc'}: internal error (TypeError: 'NoneType' object is not subscriptable); please report it"
    ]
    assert (tmp_path / "fine.png").exists() and not (tmp_path / "buggy.png").exists()


@pytest.mark.parametrize("command", ["info", "verify", "latents"])
def test_an_unexpected_exception_in_a_reading_command_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """info, verify and latents: a bug (injected where each reads the header) is one internal
    error line for its file, and the next file is still read."""
    from walloc_cli.format import header as header_module

    real = header_module.validate_header

    def buggy(header: dict[str, Any], modality: str | None = None) -> str:
        if header.get("image", {}).get("width") == 1:  # gray-1x1.wlc only
            raise KeyError("width")
        return real(header, modality)

    for module in ("walloc_cli.format.header", "walloc_cli.codecs.image", "walloc_cli.api.files", "walloc_cli.api.verify", "walloc_cli.api.latents"):
        monkeypatch.setattr(f"{module}.validate_header", buggy, raising=False)
    (tmp_path / "buggy.wlc").write_bytes(GRAY.read_bytes())
    (tmp_path / "fine.wlc").write_bytes(IMAGE.read_bytes())
    args = {"info": ["info"], "verify": ["verify"], "latents": ["latents", "-O", str(tmp_path / "latents")]}[command]
    result = CliRunner().invoke(app, args + [str(tmp_path / "buggy.wlc"), str(tmp_path / "fine.wlc")])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [f"walloc: {tmp_path / 'buggy.wlc'}: internal error (KeyError: 'width'); please report it"]
    assert "fine.wlc" in result.stdout


# --- volumes with values near float64's limit -------------------------------------------------------
def _noise_volume(scale: float) -> np.ndarray:
    """``(4, 24, 24)`` float64 smooth-ish noise times ``scale``."""
    rng = np.random.default_rng(7)
    z, y, x = np.mgrid[0:4, 0:24, 0:24] / 6.0
    return (np.sin(x + 2 * y + z) + 0.3 * rng.standard_normal((4, 24, 24))) * scale


def test_a_volume_near_1e300_codes_like_the_same_volume_at_scale_1(tmp_path: Path) -> None:
    """np.std of values near 1e300 overflows to inf; the normalisation must not, so the volume
    codes exactly as its unscaled self does (same PSNR against its own range)."""
    np.save(tmp_path / "huge.npy", _noise_volume(1e300))
    np.save(tmp_path / "unit.npy", _noise_volume(1.0))
    reports = [api.compress_file(tmp_path / f"{name}.npy", tmp_path / f"{name}.wlc") for name in ("huge", "unit")]
    assert reports[0].psnr == pytest.approx(reports[1].psnr, abs=0.05) and reports[0].psnr > 10
    api.decompress_file(tmp_path / "huge.wlc", tmp_path / "huge-out.npy")
    decoded = np.load(tmp_path / "huge-out.npy")
    assert decoded.dtype == np.float64 and np.isfinite(decoded).all()
    original = np.load(tmp_path / "huge.npy")
    assert np.corrcoef(original.ravel() / 1e300, decoded.ravel() / 1e300)[0, 1] > 0.9


def test_a_huge_valued_volume_does_not_stop_a_compress_batch(tmp_path: Path) -> None:
    """Item 3: ``walloc compress huge_values.npy kite.png -O out``."""
    np.save(tmp_path / "huge_values.npy", _noise_volume(1e300))
    extreme = np.full((2, 16, 16), 1.5e308)
    extreme[0] = -1.5e308
    np.save(tmp_path / "extreme.npy", extreme)  # 6 std overflows float64: refused in one line
    (tmp_path / "kite.png").write_bytes((REFERENCE / "rgb-16x-48x40.src.png").read_bytes())
    out = tmp_path / "out"
    args = [str(tmp_path / n) for n in ("huge_values.npy", "extreme.npy", "kite.png")]
    result = CliRunner().invoke(app, ["compress", *args, "-O", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"walloc: {tmp_path / 'extreme.npy'}: volume values -1.5e+308..1.5e+308 are too large to normalise"), lines
    assert sorted(p.name for p in out.iterdir()) == ["huge_values.wlc", "kite.wlc"]


# --- NIfTI metadata a writer hands to nibabel -------------------------------------------------------
def _nifti_edit(offset: int, data: bytes) -> Callable[[bytes], bytes]:
    def edit(block: bytes) -> bytes:
        return block[:offset] + data + block[offset + len(data):]

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda block: block[:100], "meta.nifti_header is not a base64 NIfTI-1 or NIfTI-2 header"),
        (_nifti_edit(344, b"n+1\x80"), "meta.nifti_header is not a base64 NIfTI-1 or NIfTI-2 header (magic)"),
        (_nifti_edit(70, b"\x00\x00"), "meta.nifti_header is not a base64 NIfTI-1 or NIfTI-2 header (data type code 0)"),
        (_nifti_edit(108, np.float32(256).tobytes()), "meta.nifti_header is not a base64 NIfTI-1 or NIfTI-2 header (voxel offset 256.0)"),
        (_nifti_edit(40, b"\x00\x03"), "meta.nifti_header is not a base64 NIfTI-1 or NIfTI-2 header (dim[0])"),
    ],
    ids=["short", "magic", "datatype-0", "voxel-offset-256", "dim0-byte-swapped"],
)
def test_a_nifti_header_nibabel_cannot_load_is_refused_in_one_line(tmp_path: Path, edit: Callable[[bytes], bytes], expected: str) -> None:
    """The NIfTI writer rebuilds the source's header from ``meta.nifti_header``; nibabel raises its
    own HeaderDataError for one it cannot load (a traceback before), so the validator checks what
    nibabel requires first."""
    import base64

    nib = pytest.importorskip("nibabel")
    z, y, x = np.mgrid[0:4, 0:16, 0:16]
    nib.save(nib.Nifti1Image((100 * np.sin(x / 3 + y / 5 + z)).astype(np.int16).T, np.diag([0.5, 0.5, 2.0, 1.0])), str(tmp_path / "ct.nii.gz"))
    api.compress_file(tmp_path / "ct.nii.gz", tmp_path / "ct.wlc")

    def rewrite(header: dict[str, Any], chunks: list[Chunk]) -> None:
        meta = header["volume"]["meta"]
        meta["nifti_header"] = base64.b64encode(edit(base64.b64decode(meta["nifti_header"]))).decode()

    target = edited(tmp_path / "ct.wlc", rewrite, tmp_path)
    for command in ("decompress", "info"):
        assert one_line(run(command, target, tmp_path), target) == f"invalid header: {expected}", command
