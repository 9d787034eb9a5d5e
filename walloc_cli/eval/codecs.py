"""The codecs ``walloc eval`` and ``walloc bench`` run, behind one small interface and a registry.

A codec is a class with a ``name``, a ``modality`` (``image``, ``audio`` or ``volume``), a default
list of quality settings on its own scale, and ``encode(sample, quality) -> bytes`` /
``decode(data, sample) -> array`` where the array has ``sample.data``'s shape (audio: as many
frames or fewer). ``missing()`` says why it cannot run here (library or tool absent), or None.
Registering a new one is one decorated class::

    @register
    class WallocVolume(Codec):
        name, modality = "walloc", "volume"
        qualities = (10, 30, 50, 75, 90)
        def encode(self, sample, quality): ...
        def decode(self, data, sample): ...

What each sample holds (:class:`Sample`):

* image: ``(H, W, 3)`` or ``(H, W)`` uint8 (16-bit sources are reduced to 8 bits, alpha and
  metadata dropped, so every codec codes the same pixels); rate in bits per pixel;
* audio: ``(frames, channels)`` float64 in [-1, 1] as libsndfile reads the file; rate in kbit/s;
  the codecs that read files get ``sample.path`` (walloc) or a 16-bit WAV of the samples (Opus);
* volume: ``(D, H, W)`` at the file's dtype (a ``.npy`` file); rate in bits per voxel; PSNR peak =
  the volume's data range (max - min).

Rates always count every byte a decoder needs (headers, the slice lengths of the JPEG 2000
volume stream).
"""

from __future__ import annotations

import abc
import dataclasses
import io
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from walloc_cli.errors import InputError

MODALITIES = ("image", "audio", "volume")
RATE_UNITS = {"image": "bpp", "audio": "kbit/s", "volume": "bits/voxel"}
# Default anchor of each modality's BD-rate table: the classic codec people compare against.
DEFAULT_ANCHORS = {"image": "webp", "audio": "opus", "volume": "jpeg2000"}


@dataclasses.dataclass
class Sample:
    """One input file as every codec sees it (see the module docstring for ``data``'s layout)."""

    path: Path
    modality: str
    data: np.ndarray
    peak: float  # PSNR peak: 255 for images, 1.0 (full scale) for audio, max - min for volumes
    units: float  # the rate's denominator: pixels, seconds or voxels
    samplerate: int = 0
    subtype: str = ""
    kind: str = "volume"  # volumes: what the reader made of the file (ct, mri, multispectral, volume)

    def rate(self, n_bytes: int) -> float:
        """Rate of an ``n_bytes`` file in this modality's unit (:data:`RATE_UNITS`)."""
        bits = 8.0 * n_bytes
        return bits / self.units / 1000.0 if self.modality == "audio" else bits / self.units


class Codec(abc.ABC):
    """One codec at a quality setting on its own scale (``quality_scale`` says which)."""

    name: ClassVar[str]
    modality: ClassVar[str]
    qualities: ClassVar[tuple[float, ...]]
    quality_scale: ClassVar[str]
    lossless: ClassVar[bool] = False

    @classmethod
    def missing(cls) -> str | None:
        """Why this codec cannot run here (a one-line note), or None when it can."""
        return None

    @abc.abstractmethod
    def encode(self, sample: Sample, quality: float) -> bytes:
        """The complete coded file for ``sample`` at ``quality``."""

    @abc.abstractmethod
    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        """Decoded samples, laid out as ``sample.data``."""


CODECS: dict[tuple[str, str], type[Codec]] = {}


def register(cls: type[Codec]) -> type[Codec]:
    """Class decorator: make ``cls`` available to ``walloc eval``/``bench`` as (modality, name)."""
    CODECS[(cls.modality, cls.name)] = cls
    return cls


def codec_names(modality: str | None = None) -> list[str]:
    """Registered codec names (of one modality), in registration order, without repeats."""
    return list(dict.fromkeys(name for (m, name) in CODECS if modality in (None, m)))


# --- images -----------------------------------------------------------------------------------
def _image_array(decoded: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A decoder's output as ``like``'s layout: gray ``(H, W)`` or ``(H, W, 3)`` uint8."""
    decoded = np.asarray(decoded)
    if like.ndim == 2:
        return decoded if decoded.ndim == 2 else decoded[..., 0]
    if decoded.ndim == 2:
        return np.repeat(decoded[..., None], 3, axis=2)
    return decoded[..., :3]


@register
class WallocImage(Codec):
    """walloc through its library (``compress_image`` at ``-q``, ``decode_image``)."""

    name, modality = "walloc", "image"
    qualities = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    quality_scale = "walloc -q 0..100"

    def encode(self, sample: Sample, quality: float) -> bytes:
        from walloc_cli.codecs.image import compress_image
        from walloc_cli.files.images import image_from_array

        return compress_image(image_from_array(sample.data), quality=quality).data

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        from walloc_cli.codecs.image import decode_image, quantized

        planes = quantized(decode_image(data)).astype(np.uint8)  # (C, H, W)
        return _image_array(np.moveaxis(planes, 0, -1), sample.data)


class _PillowImage(Codec):
    modality = "image"
    format_name: ClassVar[str]
    options: ClassVar[dict[str, object]] = {}

    @classmethod
    def missing(cls) -> str | None:
        from PIL import features

        feature = {"WEBP": "webp", "AVIF": "avif"}.get(cls.format_name)
        return None if feature is None or features.check(feature) else f"Pillow was built without {cls.format_name}"

    def encode(self, sample: Sample, quality: float) -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(sample.data).save(buffer, format=self.format_name, quality=int(round(quality)), **self.options)
        return buffer.getvalue()

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("L" if sample.data.ndim == 2 else "RGB"))


@register
class WebpImage(_PillowImage):
    """libwebp through Pillow, ``method=6`` (its best-compressing search)."""

    name, format_name = "webp", "WEBP"
    options = {"method": 6}
    qualities = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
    quality_scale = "libwebp quality 0..100"


@register
class JpegImage(_PillowImage):
    """libjpeg-turbo through Pillow, 4:2:0, optimised Huffman tables."""

    name, format_name = "jpeg", "JPEG"
    options = {"optimize": True}
    qualities = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
    quality_scale = "libjpeg quality 1..95"


@register
class AvifImage(_PillowImage):
    """libavif through Pillow at its default speed 6."""

    name, format_name = "avif", "AVIF"
    qualities = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    quality_scale = "libavif quality 0..100"


def _imagecodecs_missing(codec: str) -> str | None:
    try:
        import imagecodecs
    except ImportError:
        return "imagecodecs is not installed"
    return None if getattr(imagecodecs, codec).available else f"imagecodecs was built without {codec}"


@register
class JxlImage(Codec):
    """libjxl through imagecodecs; ``level`` is its quality 0..100 (100 = lossless)."""

    name, modality = "jxl", "image"
    qualities = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
    quality_scale = "libjxl quality 0..100"

    @classmethod
    def missing(cls) -> str | None:
        return _imagecodecs_missing("JPEGXL")

    def encode(self, sample: Sample, quality: float) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.jpegxl_encode(sample.data, level=int(round(quality))))

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        import imagecodecs

        return _image_array(imagecodecs.jpegxl_decode(data), sample.data)


@register
class Jpeg2000Image(Codec):
    """OpenJPEG through imagecodecs, a .jp2 file; ``level`` is OpenJPEG's fixed-quality target
    (PSNR in dB of its own measure), the closest it offers to a quality knob."""

    name, modality = "jpeg2000", "image"
    qualities = (24, 27, 30, 33, 36, 39, 42, 46, 50)
    quality_scale = "OpenJPEG target PSNR, dB"

    @classmethod
    def missing(cls) -> str | None:
        return _imagecodecs_missing("JPEG2K")

    def encode(self, sample: Sample, quality: float) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.jpeg2k_encode(sample.data, level=int(round(quality))))

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        import imagecodecs

        return _image_array(imagecodecs.jpeg2k_decode(data), sample.data)


# --- audio ------------------------------------------------------------------------------------
def _read_audio(data: bytes | Path) -> np.ndarray:
    import soundfile as sf

    decoded, _ = sf.read(io.BytesIO(data) if isinstance(data, bytes) else data, dtype="float64", always_2d=True)
    return decoded


@register
class WallocAudio(Codec):
    """walloc through its library (``compress_audio`` at ``-q`` on the source file, then
    ``decompress_audio`` to a WAV at the source's sample format)."""

    name, modality = "walloc", "audio"
    qualities = (10, 30, 50, 75, 90)
    quality_scale = "walloc -q 0..100"

    def encode(self, sample: Sample, quality: float) -> bytes:
        from walloc_cli.codecs.audio import compress_audio

        buffer = io.BytesIO()
        compress_audio(sample.path, buffer, quality=quality, measure=False)
        return buffer.getvalue()

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        from walloc_cli.codecs.audio import decompress_audio
        from walloc_cli.format.container import WlcReader

        with tempfile.TemporaryDirectory(prefix="walloc-eval-") as folder:
            out = Path(folder) / "decoded.wav"
            decompress_audio(WlcReader(io.BytesIO(data)), out)
            return _read_audio(out)


@register
class OpusAudio(Codec):
    """libopus through ``opusenc``/``opusdec`` (opus-tools) at a target bitrate; opusdec removes
    the pre-skip and resamples back to the source rate, so samples line up."""

    name, modality = "opus", "audio"
    qualities = (6, 12, 24, 48, 96)
    quality_scale = "opusenc --bitrate, kbit/s"

    @classmethod
    def missing(cls) -> str | None:
        absent = [tool for tool in ("opusenc", "opusdec") if shutil.which(tool) is None]
        return f"{' and '.join(absent)} not found (Debian package opus-tools)" if absent else None

    def encode(self, sample: Sample, quality: float) -> bytes:
        import soundfile as sf

        with tempfile.TemporaryDirectory(prefix="walloc-eval-") as folder:
            wav, coded = Path(folder) / "in.wav", Path(folder) / "out.opus"
            sf.write(wav, sample.data, sample.samplerate, subtype="PCM_16")
            run_tool(["opusenc", "--quiet", "--bitrate", f"{quality:g}", str(wav), str(coded)])
            return coded.read_bytes()

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="walloc-eval-") as folder:
            coded, wav = Path(folder) / "in.opus", Path(folder) / "out.wav"
            coded.write_bytes(data)
            run_tool(["opusdec", "--quiet", "--rate", str(sample.samplerate), str(coded), str(wav)])
            return _read_audio(wav)


def run_tool(command: list[str]) -> None:
    """Run a codec's command-line tool (``opusenc``, ``opusdec``); :class:`InputError` with the
    last line it printed on standard error when it fails."""
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise InputError(f"{command[0]} failed: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}")


@register
class FlacAudio(Codec):
    """libFLAC through libsndfile (lossless: one point, its rate; PSNR is infinite)."""

    name, modality = "flac", "audio"
    qualities = (5,)
    quality_scale = "FLAC compression level 0..8"
    lossless = True

    def encode(self, sample: Sample, quality: float) -> bytes:
        import soundfile as sf

        buffer = io.BytesIO()
        subtype = sample.subtype if sample.subtype in ("PCM_16", "PCM_24", "PCM_S8") else "PCM_16"
        sf.write(buffer, sample.data, sample.samplerate, format="FLAC", subtype=subtype, compression_level=min(max(quality, 0), 8) / 8)
        return buffer.getvalue()

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        return _read_audio(data)


# --- volumes ----------------------------------------------------------------------------------
def _restore_dtype(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float output of a scientific coder back to the volume's dtype (rounded and clipped for
    integer volumes: the user gets integers back)."""
    if np.issubdtype(like.dtype, np.integer):
        info = np.iinfo(like.dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(like.dtype)
    return values.astype(like.dtype)


@register
class WallocVolume(Codec):
    """walloc through its library (``compress_volume`` at ``-q`` on the sample's array, with the
    kind the reader found, so the CT/MRI or multispectral model is picked as the CLI would)."""

    name, modality = "walloc", "volume"
    qualities = (0, 25, 50, 75, 100)
    quality_scale = "walloc -q 0..100"

    @classmethod
    def missing(cls) -> str | None:
        from walloc_cli.errors import ModelError
        from walloc_cli.model.quality import ladder

        try:
            ladder("volume")
        except ModelError as error:
            return str(error)
        return None

    def encode(self, sample: Sample, quality: float) -> bytes:
        from walloc_cli.codecs.volume import compress_volume
        from walloc_cli.files.volumes import volume_from_array

        # the kind the reader found picks the CT/MRI or multispectral ladder, as the CLI would
        volume = dataclasses.replace(volume_from_array(sample.data, "CYX" if sample.kind == "multispectral" else "ZYX"), kind=sample.kind)
        buffer = io.BytesIO()
        compress_volume(volume, buffer, quality=quality, measure=False)
        return buffer.getvalue()

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        from walloc_cli.format.container import WlcReader
        from walloc_cli.codecs.volume import decode_volume

        return decode_volume(WlcReader(io.BytesIO(data))).array


@register
class Jpeg2000Volume(Codec):
    """OpenJPEG through imagecodecs, slice by slice along the first axis (JPEG 2000 Part 1 has no
    third transform axis); the stream is a 4-byte slice count, then each slice's length (4
    bytes) and .jp2 file, all counted in the rate. Integer volumes only."""

    name, modality = "jpeg2000", "volume"
    qualities = (50, 55, 60, 65, 70, 75, 80, 85, 90)
    quality_scale = "OpenJPEG target PSNR, dB"

    @classmethod
    def missing(cls) -> str | None:
        return _imagecodecs_missing("JPEG2K")

    def encode(self, sample: Sample, quality: float) -> bytes:
        import imagecodecs

        if not np.issubdtype(sample.data.dtype, np.integer) or sample.data.dtype.itemsize > 2:
            raise InputError(f"JPEG 2000 codes 8- and 16-bit integer volumes, not {sample.data.dtype}")
        parts = [struct.pack("<I", len(sample.data))]
        for plane in sample.data:
            coded = bytes(imagecodecs.jpeg2k_encode(np.ascontiguousarray(plane), level=int(round(quality))))
            parts += [struct.pack("<I", len(coded)), coded]
        return b"".join(parts)

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        import imagecodecs

        (count,), offset = struct.unpack_from("<I", data), 4
        planes = []
        for _ in range(count):
            (length,) = struct.unpack_from("<I", data, offset)
            planes.append(np.asarray(imagecodecs.jpeg2k_decode(data[offset + 4 : offset + 4 + length])))
            offset += 4 + length
        return np.stack(planes).astype(sample.data.dtype)


@register
class SperrVolume(Codec):
    """SPERR (wavelet + SPECK, a scientific lossy coder) through imagecodecs, on the whole volume
    as float64 at a fixed bit budget per voxel (its ``bpp`` mode)."""

    name, modality = "sperr", "volume"
    qualities = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
    quality_scale = "SPERR target bits per voxel"

    @classmethod
    def missing(cls) -> str | None:
        return _imagecodecs_missing("SPERR")

    def encode(self, sample: Sample, quality: float) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.sperr_encode(sample.data.astype(np.float64), float(quality), "bpp"))

    def decode(self, data: bytes, sample: Sample) -> np.ndarray:
        import imagecodecs

        return _restore_dtype(np.asarray(imagecodecs.sperr_decode(data)), sample.data)
