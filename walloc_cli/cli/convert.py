"""``walloc compress`` and ``walloc decompress`` as Typer commands: their options, help and
usage errors. Their body (option checks, the batch loop, the exit status) is
:mod:`walloc_cli.cli.convert_run`'s, which :mod:`walloc_cli.cli.fastpath` also calls for the plain
forms of these command lines without loading Typer (``tests/test_fastpath.py`` checks that both
front ends parse alike). Exit codes: 0 all inputs done, 1 at least one failed, 2 usage,
130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer

from walloc_cli.cli.convert_run import Usage, compress_files, decompress_files
from walloc_cli.format.limits import DEFAULT_MAX_PIXELS, DEFAULT_MAX_VOXELS


def compress(
    inputs: list[Path] = typer.Argument(..., help="Images (PNG, JPEG, TIFF, WebP, BMP), audio (WAV, FLAC, OGG, AIFF ...), volumes (multi-page/OME-TIFF, .npy, NIfTI), folders (with -r) or quoted globs to compress; - reads standard input."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input only); - writes standard output. Default: input name with .wlc (standard output for standard input)."),
    output_dir: Optional[Path] = typer.Option(None, "-O", "--output-dir", metavar="DIR", help="Write the outputs under DIR, mirroring the input tree (folders are created)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Compress the supported files in folders given as inputs, recursively (other files are skipped with a note)."),
    jobs: int = typer.Option(1, "-j", "--jobs", min=1, help="Files converted at once, each in its own process."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs."),
    quality: Optional[float] = typer.Option(None, "-q", "--quality", help="Quality 0 (smallest) to 100 (best): picks the model and quantisation step. Default: 75, or step 1 of the model given with -m."),
    target_psnr: Optional[float] = typer.Option(None, "--target-psnr", metavar="DB", help="Search for the smallest file whose PSNR reaches DB (like cwebp -psnr)."),
    target_size: Optional[int] = typer.Option(None, "--target-size", metavar="BYTES", help="Search for the best file of at most BYTES bytes (like cwebp -size); never larger."),
    model: Optional[str] = typer.Option(None, "-m", "--model", help="Shipped model name (see `walloc models`) or path to a model card .json; -q then spans this model's own step range."),
    payload: Optional[str] = typer.Option(None, "--payload", help="Lossless coder of the latents: webp, ctx (context model and range coder, format 2.2: about a tenth smaller, slower), png or jxl (JPEG XL, format 1.3). Default: webp, or ctx at --effort 5-6."),
    effort: Optional[int] = typer.Option(None, "-e", "--effort", min=0, max=6, help="Lossless coder effort for the latents, 0 (fastest) to 6 (smallest): webp method 0-6, or 5-6 the ctx payload when --payload is not given (jxl: libjxl effort 2,3,4,5,7,8,9); decoded pixels are the same. Default: the model's (see `walloc models --json`)."),
    no_psnr: bool = typer.Option(False, "--no-psnr", help="Skip the decode that measures PSNR."),
    axes: Optional[str] = typer.Option(None, "--axes", help="Read the inputs as volumes with these axes, overriding their metadata: ZYX (slices first), CYX (bands first) or YXC (bands last); also XYZ etc."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=1, help="Refuse images of more than N pixels (width x height); raise it for larger ones (memory grows with it: see the README)."),
    max_voxels: int = typer.Option(DEFAULT_MAX_VOXELS, "--max-voxels", metavar="N", min=1, help="Refuse volumes of more than N voxels; raise it for larger ones."),
    delete_input: bool = typer.Option(False, "--delete-input", help="Delete each input once its output is written and verified (decoded again from disk)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON record per file instead of the table line."),
    quiet: bool = typer.Option(False, "--quiet", help="Print errors only (-q is --quality)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also print what was skipped or deleted and a summary."),
    wlc_version: int = typer.Option(2, "--wlc-version", metavar="1|2", min=1, max=2, help="The .wlc format to write: 2 (compact header, the default) or 1 (also read by walloc before format 2.0)."),
    refine: int = typer.Option(0, "--refine", metavar="N", min=0, max=1000, help="Images: search the latents for N steps through the decoder (encoder-side search): smaller files or better PSNR at the same -q, decoded by any walloc; slower (see `man walloc`). Needs PyTorch (pip install 'walloc[train]'). Default 0: no search."),
    metadata: str = typer.Option("icc", "--metadata", metavar="LIST", help="Image metadata to keep: all, none, or a comma-separated list of icc, exif, xmp (like cwebp -metadata). The EXIF orientation is always applied to the pixels."),
) -> None:
    """Compress images, audio or volumes to .wlc and report size, rate (bpp, kbit/s or bits/voxel), compression ratio, PSNR (and SNR for audio), DR, the model and step, and time."""
    _finish(compress_files, locals())


def decompress(
    inputs: list[Path] = typer.Argument(..., help=".wlc files, folders (with -r) or quoted globs to decode; - reads standard input."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input only); its extension picks the format: images .png .tif .webp .bmp .jpg, audio .wav .flac .ogg .aiff, volumes .tif .ome.tif .npy .nii .nii.gz; - writes standard output (PNG, WAV or .npy). Default: the input name with .png for images, the source's format for audio (.flac, .aiff, else .wav) and volumes (.tif, .ome.tif, .npy, .nii.gz); standard output for standard input."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs."),
    output_dir: Optional[Path] = typer.Option(None, "-O", "--output-dir", metavar="DIR", help="Write the outputs under DIR, mirroring the input tree (folders are created)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Decode the .wlc files in folders given as inputs, recursively (other files are skipped with a note)."),
    jobs: int = typer.Option(1, "-j", "--jobs", min=1, help="Files converted at once, each in its own process."),
    delete_input: bool = typer.Option(False, "--delete-input", help="Delete each .wlc once its output is written and checked (it exists with the decoded size)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON record per file instead of the line."),
    quiet: bool = typer.Option(False, "--quiet", help="Print errors only."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also print what was skipped or deleted and a summary."),
    model: Optional[str] = typer.Option(None, "-m", "--model", help="Model card .json to use besides the shipped models (for files made with your own model; its SHA-256 must match the file's)."),
    keep_going: bool = typer.Option(False, "-F", "--keep-going", help="Audio: decode past damaged blocks, writing silence for them (named on stderr; exit status 1), like flac -F."),
    start: Optional[float] = typer.Option(None, "--start", metavar="SECONDS", help="Audio: start decoding at this time (blocks before it are skipped unread)."),
    duration: Optional[float] = typer.Option(None, "--duration", metavar="SECONDS", help="Audio: decode only this many seconds (clipped at the end of the file)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=1, help="Refuse images of more than N pixels (width x height) that a file declares; raise it for larger ones (memory grows with it: see the README)."),
    max_voxels: int = typer.Option(DEFAULT_MAX_VOXELS, "--max-voxels", metavar="N", min=1, help="Refuse volumes of more than N voxels that a file declares; raise it for larger ones."),
) -> None:
    """Decode .wlc files back to images (same size, mode, bit depth, alpha and ICC profile), audio (same rate, channels, frames, sample format) or volumes (same shape, dtype, axes and metadata)."""
    _finish(decompress_files, locals())


def _finish(body: Callable[..., int], params: dict[str, Any]) -> None:
    """Run a command's body (:mod:`walloc_cli.cli.convert_run`) with the parsed ``params``: its
    :class:`~walloc_cli.cli.convert_run.Usage` becomes Typer's usage error, its status the exit."""
    try:
        status = body(**params)
    except Usage as error:
        raise typer.BadParameter(error.message, param_hint=error.param_hint) from None
    raise typer.Exit(status)
