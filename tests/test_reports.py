"""The codec/report contract (walloc_cli.codecs.base) and the API's one modality dispatch
(walloc_cli.api.modalities): every report renders itself, the table routes every modality, and
a photo's compress does not read back the file it just wrote."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from walloc_cli.api import modalities
from walloc_cli.api.files import compress_file, decompress_file
from walloc_cli.codecs.audio import AudioDecompressReport, AudioReport
from walloc_cli.codecs.base import Report, human_bytes, open_wlc
from walloc_cli.codecs.image import CompressReport, DecompressReport
from walloc_cli.codecs.volume import VolumeDecompressReport, VolumeReport
from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.sniff import Kind
from walloc_cli.format import container

# The JSON records --json prints: these keys, in this order, as before the Report protocol.
RECORD_KEYS = {
    CompressReport: ["input", "output", "n_bytes", "pixels", "raw_bytes", "reduction", "model", "seconds", "psnr", "peak", "step", "quality", "target", "target_reached", "bpp", "ratio"],
    DecompressReport: ["input", "output", "width", "height", "mode", "seconds"],
    AudioReport: ["input", "output", "n_bytes", "seconds", "duration", "samplerate", "channels", "raw_bytes", "reduction", "model", "step", "quality", "snr", "psnr", "clipped", "modality", "kbps", "ratio"],
    AudioDecompressReport: ["input", "output", "samplerate", "channels", "frames", "seconds", "damaged", "partial"],
    VolumeReport: ["input", "output", "n_bytes", "shape", "dtype", "raw_bytes", "reduction", "model", "step", "quality", "seconds", "peak", "psnr", "modality", "bpv", "ratio"],
    VolumeDecompressReport: ["input", "output", "shape", "dtype", "seconds"],
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    y, x = np.mgrid[0:40, 0:48]
    photo = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1).astype(np.uint8)
    Image.fromarray(photo).save(folder / "photo.png")
    sf.write(folder / "tone.wav", 0.3 * np.sin(np.arange(6000) / 7.0), 16000, subtype="PCM_16")
    z = np.linspace(0, 1, 16 * 20 * 24).reshape(16, 20, 24)
    np.save(folder / "ct.npy", (np.sin(z * 9) * 800).astype(np.int16))
    return {"image": folder / "photo.png", "audio": folder / "tone.wav", "volume": folder / "ct.npy"}


@pytest.mark.parametrize("modality", ["image", "audio", "volume"])
def test_every_report_keeps_the_protocol_and_its_record(inputs: dict[str, Path], tmp_path: Path, modality: str) -> None:
    packed = compress_file(inputs[modality], tmp_path / "x.wlc")
    unpacked = decompress_file(tmp_path / "x.wlc", tmp_path / ("x" + inputs[modality].suffix))
    for report in (packed, unpacked):
        assert isinstance(report, Report)
        assert report.modality == modality and report.warnings == [] and report.problems == [] and report.partial is False
        assert report.summary().startswith(f"{report.input} -> {report.output}  ")
        assert list(report.to_dict()) == RECORD_KEYS[type(report)]
        assert "modality" not in {field.name for field in dataclasses.fields(report)}  # a class attribute: the records stay as they were


def test_an_unreached_target_is_a_warning_and_damage_a_problem() -> None:
    report = CompressReport("a.png", "a.wlc", 100, 64, 192, 4.0, "rgb-16x-v", 0.1, psnr=41.234, target="psnr 60", target_reached=False)
    assert report.warnings == ["target psnr 60 dB not reachable; kept the best quality, 41.23 dB"]
    assert dataclasses.replace(report, target_reached=True).warnings == []
    damaged = AudioDecompressReport("a.wlc", "a.wav", 16000, 1, 100, 0.1, ["AUDB chunk 1: bad CRC: frames 0..99 replaced by silence"])
    assert damaged.problems == damaged.damaged and damaged.summary() == "a.wlc -> a.wav  16000 Hz, 1 ch, 100 frames  0.10 s"


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536, 5 << 20, 3 << 30, 5000 << 30)] == ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 GiB", "5000.0 GiB"]


def test_the_table_routes_kinds_and_headers() -> None:
    assert modalities.for_input(Kind.IMAGE).name == "image"
    assert modalities.for_input(Kind.UNKNOWN).name == "image"  # the image reader names the problem
    assert modalities.for_input(Kind.AUDIO).name == "audio"
    assert modalities.for_input(Kind.IMAGE, axes="ZYX").name == "volume"
    assert [modalities.modality(name).name for name in modalities.MODALITIES] == list(modalities.MODALITIES)
    with pytest.raises(FormatError, match="modality 'text' is not supported"):
        modalities.for_header({"modality": "text"})


def test_open_wlc_takes_bytes_paths_and_streams(inputs: dict[str, Path], tmp_path: Path) -> None:
    compress_file(inputs["image"], tmp_path / "x.wlc", measure=False)
    data = (tmp_path / "x.wlc").read_bytes()
    with open(tmp_path / "x.wlc", "rb") as handle:
        for source in (data, tmp_path / "x.wlc", str(tmp_path / "x.wlc"), handle):
            with open_wlc(source) as reader:
                assert reader.header["modality"] == "image"
    with pytest.raises(InputError, match="no such file"), open_wlc(tmp_path / "missing.wlc"):
        pass
    with pytest.raises(TypeError), open_wlc(3):  # type: ignore[arg-type]
        pass


def test_a_photos_compress_reads_back_nothing_it_wrote(inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report comes from what the encoder knows (its header, its indices): no .wlc reader
    is built over the file just written, and the PSNR is the one a decode of the file gives."""
    from walloc_cli.codecs.image import decode_image
    from walloc_cli.codecs.image_tiles import sample_psnr
    from walloc_cli.files.images import read_image

    built: list[object] = []
    real = container.WlcReader.__init__

    def counting(self: container.WlcReader, *args: object, **kwargs: object) -> None:
        built.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(container.WlcReader, "__init__", counting)
    report = compress_file(inputs["image"], tmp_path / "x.wlc")
    assert built == []
    monkeypatch.undo()
    assert report.psnr == pytest.approx(sample_psnr(read_image(inputs["image"]), decode_image((tmp_path / "x.wlc").read_bytes())), abs=1e-9)
