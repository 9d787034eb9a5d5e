"""Images through the API: the photo's file glue (read the file, code it, write the output, the
report), its in-memory decoding and its checks, as the :class:`~walloc_cli.api.options.Modality`
:data:`MODALITY` that :mod:`walloc_cli.api.modalities` hands out for ``"image"``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.api.latents import LatentInfo, Latents
from walloc_cli.api.options import ALSO_ACCEPTED, CompressOptions, DecompressOptions, Modality
from walloc_cli.api.paths import check_output, default_output
from walloc_cli.codecs import image
from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.images import image_bytes, image_to_array, read_image, write_image
from walloc_cli.files.safe_io import STDIO, output_stream
from walloc_cli.files.sniff import Sniffed
from walloc_cli.format.container import WlcReader
from walloc_cli.metrics import bits_per_pixel
from walloc_cli.model.runtime import Runtime


def compress_file(src: Path, found: Sniffed, dst: Path, options: CompressOptions) -> image.CompressReport:
    picture = read_image(found.path, also_accepted=ALSO_ACCEPTED, max_pixels=options.max_pixels, prefix=found.prefix)
    started = time.perf_counter()
    encoded = image.compress_image(
        picture, quality=options.quality, model=options.model, target_psnr=options.target_psnr, target_size=options.target_size,
        payload=options.payload, effort=options.effort, max_pixels=options.max_pixels, metadata=options.metadata, refine=options.refine,
    )
    seconds = time.perf_counter() - started
    with output_stream(dst, overwrite=options.overwrite) as handle:
        handle.write(encoded.data)
    report = image.CompressReport(
        input=str(src),
        output=str(dst),
        n_bytes=len(encoded.data),
        pixels=picture.height * picture.width,
        raw_bytes=image.raw_bytes(picture.height, picture.width, picture.channels, picture.alpha is not None, picture.bit_depth),
        reduction=encoded.reduction,
        model=encoded.model,
        seconds=seconds,
        peak=2**picture.bit_depth - 1,
        step=encoded.setting.step,
        quality=encoded.quality,
        target=encoded.target,
        target_reached=encoded.target_reached,
        psnr=encoded.psnr,
    )
    if options.measure and report.psnr is None:
        report.psnr = image.measured_psnr(encoded, picture, options.model, options.max_pixels)
    return report


def encode_file(path: Path, options: CompressOptions) -> bytes:
    picture = read_image(path, also_accepted=ALSO_ACCEPTED, max_pixels=options.max_pixels)
    return image.compress_image(
        picture, quality=options.quality, model=options.model, target_psnr=options.target_psnr, target_size=options.target_size,
        payload=options.payload, effort=options.effort, max_pixels=options.max_pixels, refine=options.refine,
    ).data


def decompress_file(reader: WlcReader, src: Path, dst: Path | None, options: DecompressOptions) -> image.DecompressReport:
    started = time.perf_counter()
    dst = Path(dst) if dst is not None else default_output(src, ".png")
    check_output(src, dst, options.overwrite)
    picture = image.decode_image_reader(reader, options.model, options.max_pixels)
    if str(dst) == STDIO:
        with output_stream(dst) as handle:
            handle.write(image_bytes(picture, "PNG"))
    else:
        write_image(dst, picture, overwrite=options.overwrite)
    return image.DecompressReport(str(src), str(dst), picture.width, picture.height, picture.mode, time.perf_counter() - started)


def decode_array(reader: WlcReader, options: DecompressOptions) -> tuple[np.ndarray, dict[str, Any]]:
    picture = image.decode_image_reader(reader, options.model, options.max_pixels)
    meta = {"modality": "image", "mode": picture.mode, "bit_depth": picture.bit_depth, "icc_profile": picture.icc_profile, "exif": picture.exif, "xmp": picture.xmp, "header": reader.header}
    return image_to_array(picture), meta


def decode_latents(codec: Runtime, latents: Latents, info: LatentInfo) -> np.ndarray:
    """As :func:`walloc_cli.codecs.image.decode_image_reader` does after the payload (the same
    code: :func:`walloc_cli.codecs.image.synthesize_image`), once the latents are checked."""
    q = np.asarray(latents)
    meta = info.header["image"]
    expected = (codec.cfg.latent_dim, -(-meta["height"] // codec.cfg.block), -(-meta["width"] // codec.cfg.block))
    if q.shape != expected:
        raise InputError(f"latents are {q.shape}, this file's model and size need {expected}")
    if not np.issubdtype(q.dtype, np.integer):
        raise InputError(f"latents must be integer indices, not {q.dtype} (decode before dequantize)")
    return image_to_array(image.synthesize_image(codec, q, info.header, info.extra))


def rates(header: dict[str, Any], size: int) -> dict[str, Any]:
    meta = header["image"]
    raw = image.raw_bytes(meta["height"], meta["width"], meta["channels"], header.get("alpha") is not None, meta["bit_depth"])
    return {"bpp": bits_per_pixel(size, meta["width"] * meta["height"]), "ratio": raw / max(1, size)}


def check_output_holds(report: image.DecompressReport) -> None:
    from PIL import Image

    output = Path(report.output)
    try:
        with Image.open(output) as opened:
            size = opened.size
    except Exception as error:  # Pillow raises many types for unreadable files
        raise FormatError(f"{output}: written image does not open ({error})") from None
    if size != (report.width, report.height):
        raise FormatError(f"{output}: written image is {size[0]}x{size[1]}, expected {report.width}x{report.height}")


MODALITY = Modality("image", compress_file, encode_file, decompress_file, decode_array, decode_latents, rates, check_output_holds)

__all__ = ["MODALITY"]
