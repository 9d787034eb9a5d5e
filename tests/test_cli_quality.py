"""`walloc compress -q / --target-psnr / --target-size` with the shipped model zoo, on the
bundled sample photo (a real photo, 451x300) and gray versions of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from walloc_cli.cli.app import app
from walloc_cli.model.quality import ladder
from walloc_cli.model.zoo import available_models

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "photo.png"


def _compress(*args: str) -> tuple[int, dict, str]:
    result = CliRunner().invoke(app, ["compress", "--json", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    record = json.loads(result.stdout) if result.exit_code == 0 and result.stdout.strip() else {}
    return result.exit_code, record, result.stderr


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    folder = tmp_path_factory.mktemp("q")
    records = []
    for quality in range(0, 101, 10):
        code, record, stderr = _compress(SAMPLE, "-q", str(quality), "-o", folder / f"q{quality}.wlc")
        assert code == 0, stderr
        records.append(record)
    return records


def test_rate_and_quality_rise_with_q(sweep: list[dict]) -> None:
    sizes = [r["n_bytes"] for r in sweep]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] / 4
    scores = [r["psnr"] for r in sweep]
    assert scores[-1] > scores[0] + 6
    # every shipped RGB model of the ladder is used somewhere on the scale
    assert {r["model"] for r in sweep} == {s.model for s in ladder("rgb")}
    assert sweep[0]["quality"] == 0 and sweep[0]["step"] > sweep[-1]["step"]


def test_the_step_is_recorded_and_decoded(sweep: list[dict], tmp_path: Path) -> None:
    path = Path(sweep[3]["output"])
    info = CliRunner().invoke(app, ["info", "--json", str(path)])
    assert json.loads(info.stdout)["header"]["latent"]["step"] == sweep[3]["step"]
    result = CliRunner().invoke(app, ["decompress", str(path), "-o", str(tmp_path / "back.png")])
    assert result.exit_code == 0
    back = np.asarray(Image.open(tmp_path / "back.png").convert("RGB"), dtype=np.float64)
    original = np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.float64)
    assert 10 * np.log10(255**2 / np.mean((back - original) ** 2)) == pytest.approx(sweep[3]["psnr"], abs=1e-6)


def test_target_psnr_lands_within_three_tenths_of_a_db(tmp_path: Path) -> None:
    code, record, stderr = _compress(SAMPLE, "--target-psnr", "32", "-o", tmp_path / "t.wlc")
    assert code == 0, stderr
    assert record["target_reached"] is True and abs(record["psnr"] - 32) <= 0.3


def test_an_unreachable_target_psnr_keeps_the_best_and_warns(tmp_path: Path) -> None:
    code, record, stderr = _compress(SAMPLE, "--target-psnr", "70", "-o", tmp_path / "t.wlc")
    assert code == 0
    assert record["target_reached"] is False
    assert "target psnr 70 dB not reachable" in stderr


def test_target_psnr_and_target_size_search_the_same_trained_steps(tmp_path: Path) -> None:
    """A very low PSNR target gives the smallest file, which is exactly the smallest file the size
    search says it can make; neither leaves the trained step range the README documents."""
    from walloc_cli.model.quality import trained_steps
    from walloc_cli.model.zoo import find_card

    code, record, stderr = _compress(SAMPLE, "--target-psnr", "10", "-o", tmp_path / "t.wlc")
    assert code == 0, stderr
    largest, smallest = trained_steps(find_card(record["model"]))
    assert smallest <= record["step"] <= largest
    code, _, stderr = _compress(SAMPLE, "--target-size", "100", "-o", tmp_path / "s.wlc")
    assert code == 1
    assert f"the smallest this image compresses to is {record['n_bytes']} bytes" in stderr
    code, fitted, stderr = _compress(SAMPLE, "--target-size", str(record["n_bytes"]), "-o", tmp_path / "u.wlc")
    assert code == 0 and fitted["n_bytes"] == record["n_bytes"], stderr


@pytest.mark.parametrize("budget", [5000, 9000, 20000])
def test_target_size_is_never_exceeded(tmp_path: Path, budget: int) -> None:
    code, record, stderr = _compress(SAMPLE, "--target-size", str(budget), "-o", tmp_path / "t.wlc")
    assert code == 0, stderr
    assert (tmp_path / "t.wlc").stat().st_size == record["n_bytes"] <= budget
    assert record["n_bytes"] > 0.6 * budget  # and it does not waste the budget


def test_a_size_nothing_fits_in_is_one_line_and_no_file(tmp_path: Path) -> None:
    code, _, stderr = _compress(SAMPLE, "--target-size", "300", "-o", tmp_path / "t.wlc")
    assert code == 1
    assert stderr.strip().splitlines() == [line for line in stderr.strip().splitlines() if line.startswith(f"walloc: {SAMPLE}: cannot fit in 300 bytes")]
    assert not (tmp_path / "t.wlc").exists()


@pytest.mark.parametrize("args", [["-q", "101"], ["-q", "-1"], ["-q", "50", "--target-psnr", "30"], ["--target-size", "900", "--target-psnr", "30"]])
def test_bad_or_conflicting_quality_options_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(app, ["compress", str(SAMPLE), "-o", str(tmp_path / "x.wlc"), *args])
    assert result.exit_code == 2
    assert not (tmp_path / "x.wlc").exists()


def test_gray_photos_use_a_gray_model_and_pay_for_one_channel(tmp_path: Path) -> None:
    gray = np.asarray(Image.open(SAMPLE).convert("L"))
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "gray-as-rgb.png")
    gray_models = {c.name for c in available_models() if c.config.channels == 1 and c.modality == "image"}
    code, record, stderr = _compress(tmp_path / "gray.png", "-q", "0")
    assert code == 0, stderr
    assert record["model"] in gray_models
    # the same step through a one-channel and a three-channel 16x model: one channel is cheaper
    code, one, _ = _compress(tmp_path / "gray.png", "-m", sorted(gray_models)[0], "-o", tmp_path / "one.wlc")
    code, three, _ = _compress(tmp_path / "gray.png", "-m", "rgb-16x-v", "-o", tmp_path / "three.wlc")
    assert one["step"] == three["step"] == 1.0 and one["n_bytes"] < 0.8 * three["n_bytes"]
    # the top of the gray scale reaches RGB-model quality (gray coded as three equal planes)
    code, top, _ = _compress(tmp_path / "gray.png", "-q", "100", "-o", tmp_path / "top.wlc")
    assert top["psnr"] > record["psnr"] + 8
    sizes = [_compress(tmp_path / "gray.png", "-q", str(q), "-o", tmp_path / f"g{q}.wlc")[1]["n_bytes"] for q in range(0, 101, 12)]
    assert sizes == sorted(sizes)
    # an RGB file holding a gray picture is coded as gray and comes back as RGB with equal planes
    code, record, stderr = _compress(tmp_path / "gray-as-rgb.png", "-q", "0")
    assert code == 0 and record["model"] in gray_models
    result = CliRunner().invoke(app, ["decompress", str(tmp_path / "gray-as-rgb.wlc"), "-o", str(tmp_path / "back.png")])
    assert result.exit_code == 0
    back = Image.open(tmp_path / "back.png")
    assert back.mode == "RGB"
    planes = np.asarray(back)
    assert np.array_equal(planes[..., 0], planes[..., 1]) and np.array_equal(planes[..., 0], planes[..., 2])
