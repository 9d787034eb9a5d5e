"""What the ``walloc`` commands print: the two output streams, one-line errors, reports and tables.

Every line a command writes goes through here, so its wording lives in one place. Standard
output carries results (and the converted file itself with ``-o -``), standard error carries
errors, notes and progress.

Imports nothing heavy at import time, not even Rich: a report or error line is plain text and
is written as it is (:class:`Stream`); Rich is loaded for what needs it (tables, progress bars,
wrapped text), so ``walloc compress`` in a shell loop does not pay for it on every file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TextIO, TypeVar

if TYPE_CHECKING:  # annotations only: nothing of the library is imported to print
    from rich.console import Console

    from walloc_cli.codecs.base import Report
    from walloc_cli.model.zoo import ModelCard


class Stream:
    """Standard output or standard error as the commands use it: ``print(text, markup=False,
    soft_wrap=True)`` (the form of every report, record and error line) writes ``text`` and a
    newline as they are; any other print, and progress bars (:attr:`rich`), go through a Rich
    console made on first use. The stream is looked up at each write, as Rich does, so a
    redirected ``sys.stdout`` (tests, progress bars) is honoured."""

    def __init__(self, stderr: bool = False, wide: bool = False) -> None:
        self.stderr = stderr
        self.wide = wide  # when not a terminal, 160 columns instead of Rich's 80
        self._console: Console | None = None

    @property
    def file(self) -> TextIO:
        return sys.stderr if self.stderr else sys.stdout

    @property
    def rich(self) -> Console:
        """The Rich console of this stream (tables, progress bars), made when first asked for."""
        if self._console is None:
            from rich.console import Console

            width = None if not self.wide or self.file.isatty() else 160
            self._console = Console(stderr=self.stderr, highlight=False, width=width)
        return self._console

    @property
    def is_terminal(self) -> bool:
        """Rich's answer, without loading Rich where it is plainly no: not a terminal and no
        ``TTY_COMPATIBLE`` or ``FORCE_COLOR`` variable to say otherwise."""
        try:
            tty = self.file.isatty()
        except ValueError:  # closed
            tty = False
        if not tty and "TTY_COMPATIBLE" not in os.environ and "FORCE_COLOR" not in os.environ:
            return False
        return self.rich.is_terminal

    def print(self, *objects: Any, markup: bool | None = None, soft_wrap: bool = False, **options: Any) -> None:
        """A plain line written as it is (no markup, emoji codes or wrapping to interpret), else Rich's ``print``."""
        if len(objects) == 1 and isinstance(objects[0], str) and markup is False and soft_wrap and not options:
            self.file.write(objects[0] + "\n")
            return
        self.rich.print(*objects, markup=markup, soft_wrap=soft_wrap, **options)


out = Stream()
err = Stream(stderr=True)
# ``eval`` and ``bench`` print wide tables as their result: when piped (a report, a log) do not
# squeeze them into 80 columns.
wide_out = Stream(wide=True)
T = TypeVar("T")


def _fail(path: Path | str, error: BaseException) -> None:
    """Print ``error`` as ``walloc: PATH: message`` (the path once, even if the message has it)."""
    message = str(error) if str(error) else type(error).__name__
    # A refused overwrite names the *output* file; everything else is about the input.
    prefix = "" if isinstance(error, FileExistsError) or message.startswith(f"{path}: ") else f"{path}: "
    err.print(f"walloc: {prefix}{message}", markup=False, soft_wrap=True)


def guard(path: Path | str, action: Callable[[], T]) -> T | None:
    """Run ``action``; turn failures into one line ``walloc: PATH: problem`` on standard error
    (any exception that is not a walloc or OS error is a bug, said as such). Returns None on
    failure, so the command goes on with its next input."""
    from walloc_cli.errors import WallocError, internal_error

    try:
        return action()
    except (WallocError, FileExistsError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        _fail(path, error if not isinstance(error, OSError) or not error.strerror else Exception(error.strerror.lower()))
    except OSError as error:
        _fail(path, Exception(error.strerror or str(error)))
    except KeyboardInterrupt:
        raise
    except Exception as error:  # noqa: BLE001 - a bug in walloc: still one line for this file, and the next file goes on
        _fail(path, Exception(internal_error(error)))
    return None


def require_torch(command: str) -> None:
    """Exit 2 with one line naming the extra to install when PyTorch cannot be imported:
    ``command`` needs it, and the default install (``pip install walloc``) has no torch."""
    if missing_torch(command):
        import typer

        raise typer.Exit(2)


def missing_torch(command: str) -> bool:
    """Whether PyTorch cannot be imported; if so, the one line that says ``command`` needs it
    and which extra brings it is printed (the caller then exits 2)."""
    try:
        import torch  # noqa: F401  (the command imports it next anyway)
    except ImportError:
        err.print(f"walloc: {command} needs PyTorch: pip install 'walloc[train]'", markup=False, soft_wrap=True)
        return True
    return False


def show_compressed(src: str, report: Report, json_out: bool, quiet: bool) -> int:
    """Print one compress report (standard error when standard output carries the data)."""
    return _show(src, report, json_out, quiet)


def show_decompressed(src: str, report: Report, json_out: bool, quiet: bool) -> int:
    """Print one decompress report; damaged audio blocks are errors (returns 1 for them)."""
    return _show(src, report, json_out, quiet)


def _show(src: str, report: Report, json_out: bool, quiet: bool) -> int:
    """One report: its problems (errors: returns 1), its warnings (unless ``quiet``), then its
    JSON record or summary line, on standard error when standard output carries the data."""
    for problem in report.problems:
        err.print(f"walloc: {src}: {problem}", markup=False, soft_wrap=True)
    console = err if report.output == "-" else out  # stdout carries the data
    if not quiet:
        for warning in report.warnings:
            err.print(f"walloc: {src}: {warning}", markup=False, soft_wrap=True)
    if json_out:
        console.print(json.dumps(report.to_dict()), markup=False, soft_wrap=True)
    elif not quiet:
        console.print(report.summary(), markup=False, soft_wrap=True)
    return int(bool(report.problems))


def format_info(data: dict[str, Any]) -> str:
    """The text ``walloc info`` prints for one file, from :func:`describe`'s record ``data``."""
    from walloc_cli.codecs.base import human_bytes  # the size wording of the reports (info runs the library anyway)

    header = data["header"]
    lines = [f"{data['file']}: walloc .wlc v{data['format_version']}, {human_bytes(data['bytes'])}"]
    if "payload_bytes" in data:  # the coded latents; the rest is header, framing and metadata
        lines[0] += f" ({human_bytes(data['payload_bytes'])} coded latents, {human_bytes(data['bytes'] - data['payload_bytes'])} header and metadata)"
    image = header.get("image")
    if isinstance(image, dict):
        lines.append(f"  image     {image.get('width')}x{image.get('height')} {image.get('mode')}, {image.get('bit_depth')}-bit, from {image.get('source_format')}")
    audio = header.get("audio")
    if isinstance(audio, dict):
        lines.append(f"  audio     {audio.get('samplerate')} Hz, {audio.get('channels')} ch, {audio.get('frames')} frames, {audio.get('subtype')} from {audio.get('format')}")
    if "bpp" in data:
        lines.append(f"  rate      {data['bpp']:.4f} bpp, {data['ratio']:.1f}:1 compression, DR {data.get('reduction', 0):g}x")
    if "kbps" in data:
        lines.append(f"  rate      {data['kbps']:.1f} kbit/s, {data['ratio']:.1f}:1 compression, DR {data.get('reduction', 0):g}x")
    volume = header.get("volume")
    if isinstance(volume, dict):
        shape = "x".join(map(str, volume.get("shape", [])))
        lines.append(f"  volume    {shape} {volume.get('dtype')} ({volume.get('kind')}), axes {volume.get('axes')} from {volume.get('format')}")
    if "bpv" in data:
        lines.append(f"  rate      {data['bpv']:.4f} bits/voxel, {data['ratio']:.1f}:1 compression, DR {data.get('reduction', 0):g}x")
    model = header.get("model", {})
    lines.append(f"  model     {model.get('name')} (sha256 {str(model.get('sha256'))[:16]}…)")
    codec = header.get("codec", {})
    if codec:
        lines.append(f"  codec     WPT {codec.get('levels')} levels ({codec.get('boundary')}), {codec.get('latent_dim')} latent channels, {codec.get('bits')}-bit")
    latent = header.get("latent", {})
    if latent:
        if "shape" in latent:
            layout = f"latent {'x'.join(map(str, latent['shape']))}"
        elif "tile" in latent:
            layout = f"tiles of {'x'.join(map(str, latent['tile']))} latents (+{latent.get('decode_margin')} context)"
        else:
            layout = f"{latent.get('streams')} streams in blocks of {latent.get('block')} frames (+{latent.get('margin')} context)"
        told = f", decoder told step {latent['condition']}" if "condition" in latent and latent["condition"] != latent.get("step") else ""
        lines.append(f"  payload   {latent.get('payload')} lossless, {layout}, step {latent.get('step')} ({latent.get('bits')}-bit indices){told}")
    alpha = header.get("alpha")
    if alpha:
        lines.append(f"  alpha     {'constant ' + str(alpha['constant']) if 'constant' in alpha else alpha.get('codec') + ' lossless'}")
    if "metadata" in data:
        kept = [f"{name} (sRGB, as a flag)" if name == "icc" and isinstance(image, dict) and image.get("icc") == "srgb" else name for name in data["metadata"]]
        lines.append(f"  metadata  {', '.join(kept) or 'none'}")
    for kind, entry in data["chunks"].items():
        lines.append(f"  chunk     {kind}  x{entry['count']}  {human_bytes(entry['bytes'])}")
    if "encoder" in header:  # format 2.0 does not store it (formats/wlc.md, "Format 2.0")
        lines.append(f"  encoder   {header['encoder']}")
    return "\n".join(lines)


def print_models(cards: list[ModelCard]) -> None:
    """The ``walloc models`` table: one row per model card, with its quality stanzas and the
    measured rate/PSNR points of the card."""
    from rich.table import Table  # only here: ``walloc --version`` need not load it

    from walloc_cli.model.quality import stanzas

    table = Table(title="walloc models (images: bits per pixel of the whole .wlc on the card's test photos, PSNR peak 255; audio: payload bits per sample on the validation audio, PSNR against each file's peak)")
    for column in ("name", "modality", "ch", "DR", "params", "steps", "-q", "measured (step: bpp / PSNR)"):
        table.add_column(column)
    for card in cards:
        steps = card.card.get("steps", {"min": 1.0, "max": 1.0})
        families = stanzas(card)
        points = card.card.get("results", {}).get("points", [])
        table.add_row(
            card.name,
            card.modality,
            str(card.config.channels),
            f"{card.config.reduction:g}x",
            f"{card.parameters / 1e6:.2f}M",
            f"{steps['min']:g}" if steps["min"] == steps["max"] else f"{steps['min']:g}-{steps['max']:g}",
            "\n".join(f"{q['family']} {q['q'][0]:g}-{q['q'][1]:g}" for q in families) or "-",
            "\n".join(f"{p['step']:g}: {p['bpp']:.3f} {'b/sample' if card.modality == 'audio' else 'b/voxel' if card.modality == 'volume' else 'bpp'} / {p['psnr']:.2f} dB" for p in points) or "-",
        )
    out.print(table)

