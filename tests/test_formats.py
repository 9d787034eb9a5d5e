"""Reference .wlc files in formats/reference/ must keep decoding, and the writer must keep
producing the same header bytes for the same input (the compatibility promise of format v1)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from walloc_cli import __version__
from walloc_cli.codecs.image import decode_image, encode_image
from walloc_cli.format.compact import decode_varint
from walloc_cli.format.container import WlcWriter, loads, wlc_version
from walloc_cli.files.images import read_image
from walloc_cli.format.header import tight_bits
from walloc_cli.format.payload import decode_planes

REFERENCE = Path(__file__).resolve().parent.parent / "formats" / "reference"
INDEX = json.loads((REFERENCE / "index.json").read_text())


def _header_bytes(data: bytes) -> bytes:
    """Signature, version, header length, header (1.x JSON, 2.0 compact) and its CRC."""
    if data[8] == 1:
        length = int.from_bytes(data[10:14], "little")
        return data[: 14 + length + 4]
    length, at = decode_varint(data, 10, 1 << 20, "header length")
    return data[: at + length + 4]


def _canonical_header_bytes(header: dict, minor: int, major: int = 1) -> bytes:
    """What a writer writes for ``header`` in a file of format ``major.minor``."""
    buffer = io.BytesIO()
    with WlcWriter(buffer, header, minor=minor, major=major):
        pass
    return _header_bytes(buffer.getvalue())


def _latents(data: bytes) -> np.ndarray:
    header, chunks = loads(data)
    latent = header["latent"]
    return decode_planes([c.data for c in chunks if c.type == "LATN"], tuple(latent["shape"]), latent["bits"], latent["payload"], latent.get("split") is True)


def test_there_are_reference_files_for_each_shipped_image_model() -> None:
    from walloc_cli.model.zoo import available_models

    assert {case["model"] for case in INDEX.values()} >= {c.name for c in available_models() if c.modality == "image"}
    assert any(case.get("step", 1.0) < 1 for case in INDEX.values()) and any(case.get("step", 1.0) > 1 for case in INDEX.values())
    assert {case["payload"] for case in INDEX.values()} == {"webp", "png", "jxl", "ctx"}


@pytest.mark.parametrize("name", sorted(INDEX))
def test_reference_file_decodes_to_its_recorded_output(name: str) -> None:
    decoded = decode_image((REFERENCE / f"{name}.wlc").read_bytes())
    expected = read_image(REFERENCE / f"{name}.out.png")
    assert decoded.mode == expected.mode and decoded.bit_depth == expected.bit_depth
    assert (decoded.height, decoded.width) == (expected.height, expected.width)
    difference = np.abs(decoded.pixels.astype(np.int64) - expected.pixels)  # integer samples
    # float rounding on another CPU may move a sample by one level, never more
    assert difference.max() <= 1
    assert (difference == 0).mean() > 0.99
    if expected.alpha is not None:
        assert np.array_equal(decoded.alpha, expected.alpha)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_reference_header_bytes_are_canonical(name: str) -> None:
    data = (REFERENCE / f"{name}.wlc").read_bytes()
    header, _ = loads(data)
    assert _header_bytes(data) == _canonical_header_bytes(header, data[9], data[8])


@pytest.mark.parametrize("name", sorted(INDEX))
def test_encoder_reproduces_reference_header_and_latents(name: str) -> None:
    case = INDEX[name]
    reference = (REFERENCE / f"{name}.wlc").read_bytes()
    with wlc_version(reference[8]):  # the writer of each major keeps its bytes
        fresh = encode_image(read_image(REFERENCE / f"{name}.src.png"), model=case["model"], payload=case["payload"], step=case.get("step", 1.0))
    ref_header, _ = loads(reference)
    old, new = _latents(reference), _latents(fresh)
    # Format 1.3 declares the bits the indices need (format.header.tight_bits): a file whose
    # indices fit fewer than the model's bits is now written as 1.3 with those; the others keep
    # every byte.
    bits = tight_bits(old, ref_header["latent"]["bits"])
    minor = 3 if bits < ref_header["latent"]["bits"] and reference[8] == 1 else reference[9]
    expected = _canonical_header_bytes({**ref_header, "encoder": f"walloc {__version__}", "latent": {**ref_header["latent"], "bits": bits}}, minor, reference[8])
    assert _header_bytes(fresh) == expected  # byte for byte, only the version string (and bits) may differ
    assert old.shape == new.shape
    assert np.abs(old - new).max() <= 1 and (old == new).mean() > 0.99


def test_reference_metadata_comes_back_upright() -> None:
    """Format 1.2: the exif and xmp chunks hold the source's blocks with orientation 1, and the
    pixels are stored upright (the source PNG is stored sideways with orientation 6)."""
    from walloc_cli.files.image_meta import exif_orientation

    tagged = [name for name in INDEX if "exif" in name]
    assert tagged
    for name in tagged:
        data = (REFERENCE / f"{name}.wlc").read_bytes()
        assert data[8:10] == bytes([1, 2])
        source = read_image(REFERENCE / f"{name}.src.png")  # upright, blocks set to orientation 1
        decoded = decode_image(data)
        assert decoded.exif == source.exif and decoded.xmp == source.xmp
        assert exif_orientation(decoded.exif) == 1 and b'tiff:Orientation="1"' in decoded.xmp
        output = read_image(REFERENCE / f"{name}.out.png")
        assert (output.height, output.width) == (decoded.height, decoded.width) == (source.height, source.width)
        assert output.exif == decoded.exif


AUDIO = REFERENCE / "audio"
AUDIO_INDEX = json.loads((AUDIO / "index.json").read_text())


def test_there_are_audio_reference_files_for_each_shipped_audio_model() -> None:
    from walloc_cli.model.zoo import available_models

    assert {case["model"] for case in AUDIO_INDEX.values()} >= {c.name for c in available_models() if c.modality == "audio"}


@pytest.mark.parametrize("name", sorted(AUDIO_INDEX))
def test_audio_reference_file_decodes_to_its_recorded_output(name: str, tmp_path: Path) -> None:
    import soundfile as sf

    from walloc_cli.codecs.audio import decompress_audio
    from walloc_cli.format.container import WlcReader

    with open(AUDIO / f"{name}.wlc", "rb") as handle:
        reader = WlcReader(handle)
        data = (AUDIO / f"{name}.wlc").read_bytes()
        assert _header_bytes(data) == _canonical_header_bytes(reader.header, data[9], data[8])
        decompress_audio(reader, tmp_path / "out.wav")
    decoded, rate = sf.read(tmp_path / "out.wav", dtype="int32", always_2d=True)
    expected, expected_rate = sf.read(AUDIO / f"{name}.out.wav", dtype="int32", always_2d=True)
    assert rate == expected_rate and decoded.shape == expected.shape
    # one 16-bit step (1 << 16 in int32 units) of float rounding on another CPU, never more
    assert np.abs(decoded.astype(np.int64) - expected).max() <= 1 << 16


VOLUME = REFERENCE / "volume"
VOLUME_INDEX = json.loads((VOLUME / "index.json").read_text())


def test_there_are_volume_reference_files_for_each_shipped_volume_model() -> None:
    from walloc_cli.model.zoo import available_models

    assert {case["model"] for case in VOLUME_INDEX.values()} >= {c.name for c in available_models() if c.modality == "volume"}


@pytest.mark.parametrize("name", sorted(VOLUME_INDEX))
def test_volume_reference_file_decodes_to_its_recorded_output(name: str) -> None:
    from walloc_cli.format.container import WlcReader
    from walloc_cli.codecs.volume import decode_volume

    with open(VOLUME / f"{name}.wlc", "rb") as handle:
        reader = WlcReader(handle)
        data = (VOLUME / f"{name}.wlc").read_bytes()
        assert _header_bytes(data) == _canonical_header_bytes(reader.header, data[9], data[8])
        decoded = decode_volume(reader)
    expected = np.load(VOLUME / f"{name}.out.npy")
    assert decoded.array.dtype == expected.dtype and decoded.array.shape == expected.shape
    # one step of the integer dtype from float rounding on another CPU, never more
    assert np.abs(decoded.array.astype(np.int64) - expected.astype(np.int64)).max() <= 1
