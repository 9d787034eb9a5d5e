"""The decoder condition of volume files (format 1.1 ``latent.condition``): the encoder measures
which step value a step-aware decoder should be told, writes it, and every decoder uses it."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest

from walloc_cli.api.files import compress_file, decompress_file
from walloc_cli.format.container import WlcReader, WlcWriter, dumps, read
from walloc_cli.errors import FormatError
from walloc_cli.codecs.volume_tiles import CONDITIONS

REFERENCE = Path(__file__).resolve().parent.parent / "formats" / "reference" / "volume"


def psnr_range(a: np.ndarray, b: np.ndarray) -> float:
    peak = float(a.max()) - float(a.min())
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, object]:
    """The held-out WorldView-2 crop at q 100 (ms-3d-2x-v, step 0.25), where the decoder told
    the true step is measurably worse than told another (the case the key exists for)."""
    tmp = tmp_path_factory.mktemp("condition")
    cube = np.load(REFERENCE / "ms-uint16-8x48x56.src.npy")
    np.save(tmp / "cube.npy", cube)
    report = compress_file(tmp / "cube.npy", tmp / "cube.wlc", quality=100, axes="CYX", wlc_version=1)  # 1.x: its minors are tested
    return tmp, cube, report


def test_step_aware_volume_files_carry_a_measured_condition_and_are_1_1(coded: tuple[Path, np.ndarray, object]) -> None:
    tmp, _, report = coded
    with open(tmp / "cube.wlc", "rb") as stream:
        reader = WlcReader(stream)
        latent = reader.header["latent"]
        # 1.1 for latent.condition; 1.3 when the indices also fit fewer bits than the model's
        assert reader.version == ((1, 3) if latent["bits"] < 10 else (1, 1))
    assert report.model == "ms-3d-2x-v" and latent["step"] == 0.25  # type: ignore[attr-defined]
    assert latent["condition"] in {latent["step"], *CONDITIONS}


def test_the_condition_is_what_decoders_use_and_it_beats_the_true_step(coded: tuple[Path, np.ndarray, object]) -> None:
    tmp, cube, report = coded
    decompress_file(tmp / "cube.wlc", tmp / "out.npy")
    told = psnr_range(cube, np.load(tmp / "out.npy"))
    assert told == pytest.approx(report.psnr, abs=1e-6)  # type: ignore[attr-defined]  # the report is the decode
    # The same latents decoded as a 1.0 reader would (no key: told the true step).
    header, chunks = read(io.BytesIO((tmp / "cube.wlc").read_bytes()))
    assert header["latent"].pop("condition") != header["latent"]["step"]
    data = io.BytesIO()
    with WlcWriter(data, header, minor=(tmp / "cube.wlc").read_bytes()[9], major=1) as writer:  # the source's version (1.3: tight bits)
        for chunk in chunks:
            writer.write_chunk(chunk)
    (tmp / "plain.wlc").write_bytes(data.getvalue())
    decompress_file(tmp / "plain.wlc", tmp / "plain.npy")
    plain = psnr_range(cube, np.load(tmp / "plain.npy"))
    assert told > plain + 0.3, (told, plain)  # measured: 37.91 against 37.16 dB on this crop


@pytest.mark.parametrize("value", [0.1, 100, "1", True, None])
def test_an_impossible_condition_is_one_clean_error(coded: tuple[Path, np.ndarray, object], value: object) -> None:
    tmp, _, _ = coded
    header, chunks = read(io.BytesIO((tmp / "cube.wlc").read_bytes()))
    header["latent"]["condition"] = value
    (tmp / "bad.wlc").write_bytes(dumps(header, chunks))
    with pytest.raises(FormatError, match="invalid header: condition="):
        decompress_file(tmp / "bad.wlc", tmp / "bad.npy")
    assert not (tmp / "bad.npy").exists()
