"""``walloc eval`` and ``walloc bench``: thin Typer commands over :mod:`walloc_cli.eval.run` and
:mod:`walloc_cli.eval.speed` (registered in :mod:`walloc_cli.cli.app`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from walloc_cli.cli.render import err
from walloc_cli.cli.render import wide_out as out
from walloc_cli.errors import WallocError

if TYPE_CHECKING:  # the eval layer imports numpy and the codecs: only its types are needed here
    from rich.table import Table

    from walloc_cli.eval.run import Row
    from walloc_cli.eval.speed import SpeedRow


def _line(message: str) -> None:
    err.print(f"walloc: {message}", markup=False, soft_wrap=True)


def _number(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "lossless" if value > 0 else "-inf"
    return f"{value:.{digits}f}{suffix}"


def _range(low: float | None, high: float | None, digits: int) -> str:
    """``low–high``, or one value when they are equal (a lossless codec's single point)."""
    if low == high or (low is not None and high is not None and math.isnan(low) and math.isnan(high)):
        return _number(low, digits)
    return f"{_number(low, digits)}–{_number(high, digits)}"


def _split(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected numbers separated by commas") from None


def eval_command(
    inputs: list[Path] = typer.Argument(..., help="Images, audio files, volumes (multi-page TIFF, .npy, NIfTI), or folders of them (one level)."),
    codecs: str | None = typer.Option(None, "--codecs", metavar="LIST", help="Codecs to run, separated by commas (each file runs those of its modality): for images walloc, webp, jpeg, avif, jxl, jpeg2000; for audio walloc, opus, flac; for volumes walloc, jpeg2000, sperr. Default: all that run here."),
    quality: list[str] | None = typer.Option(None, "--quality", metavar="LIST", help="Quality settings, comma-separated, for every codec (10,30,50) or one codec (webp=50,75,90); repeatable. Default: a spread per codec on its own scale."),
    out_dir: Path = typer.Option(Path("walloc-eval"), "--out", metavar="DIR", help="Folder for results.csv, results.json and the plots rd_MODALITY.png/.svg (created)."),
    anchor: str | None = typer.Option(None, "--anchor", metavar="CODEC", help="Reference codec of the BD-rate table. Default: webp (images), opus (audio), jpeg2000 (volumes)."),
    method: str = typer.Option("pchip", "--bd-method", metavar="NAME", help="BD-rate interpolation of log-rate over PSNR: pchip (piecewise-cubic Hermite, as the JCT-VC/JVET spreadsheets), cubic (VCEG-M33's cubic fit) or akima."),
    no_plot: bool = typer.Option(False, "--no-plot", help="Do not draw the RD plots."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite result files already in --out."),
) -> None:
    """Rate-distortion evaluation: every file x codec x quality; rate, PSNR, SSIM (images), SNR (audio), encode/decode time; CSV, JSON, a summary with BD-rates, and plots."""
    from walloc_cli.eval.measures import BD_METHODS, bd_rate_missing
    from walloc_cli.eval.run import bd_rates, check_outputs, parse_qualities, run_eval, write_results

    if method not in BD_METHODS:
        raise typer.BadParameter(f"{method!r}: choose {', '.join(BD_METHODS)}", param_hint="--bd-method")
    names = [c.strip() for c in codecs.split(",") if c.strip()] if codecs else None
    try:
        qualities = parse_qualities(quality or [])
        check_outputs(out_dir, force)
        out_dir.mkdir(parents=True, exist_ok=True)
        result = run_eval(inputs, names, qualities, progress=lambda text: err.print(f"  {text}", markup=False, soft_wrap=True))
    except (WallocError, FileExistsError, OSError) as error:
        _line(str(error))
        raise typer.Exit(1) from None
    for path, problem in result.failed:
        _line(f"{path}: {problem}")
    bd_skipped = bd_rate_missing() if result.rows else None  # one note; the rows are still written
    if bd_skipped:
        result.notes.append(bd_skipped)
    for note in result.notes:
        err.print(f"note: {note}", markup=False, soft_wrap=True)
    if not result.rows:
        _line("nothing was measured")
        raise typer.Exit(1)
    bd = bd_rates(result.rows, anchor, method, skipped=bool(bd_skipped))
    for modality, rates in bd.items():
        out.print(_rd_table(result.rows, modality, rates, with_bd=not bd_skipped))
    try:
        written, plot_note = write_results(result, bd, out_dir, force, plots=not no_plot)
    except (WallocError, FileExistsError, OSError) as error:
        _line(str(error))
        raise typer.Exit(1) from None
    if plot_note:
        err.print(f"note: {plot_note}", markup=False)
    out.print("wrote " + ", ".join(str(p) for p in written), markup=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)


def _rd_table(rows: list[Row], modality: str, rates: dict[str, Any], with_bd: bool) -> Table:
    """``walloc eval``'s summary of one modality: per codec, the range over its quality settings
    of the mean over files of rate, PSNR (and SSIM or SNR), times, and its BD-rate (``rates``:
    one modality of :func:`walloc_cli.eval.run.bd_rates`)."""
    from rich.table import Table

    from walloc_cli.eval.codecs import RATE_UNITS
    from walloc_cli.eval.run import summary

    reference, method = rates["anchor"], rates["method"]
    files = len({r.file for r in rows if r.modality == modality})
    bd_title = f"; BD-rate vs {reference or '— (anchor did not run)'} ({method})" if with_bd else ""
    table = Table(title=f"{modality}: {files} file{'s' if files != 1 else ''}, mean over files per quality setting{bd_title}")
    extra = {"image": "SSIM", "audio": "SNR dB", "volume": None}[modality]
    if extra == "SSIM" and all(r.ssim is None for r in rows if r.modality == "image"):
        extra = None  # SSIM was not measured (its package is absent): no column, a note said why
    for column in ["codec", "points", f"rate {RATE_UNITS[modality]}", "PSNR dB", *( [extra] if extra else []), "encode s", "decode s", *(["BD-rate"] if with_bd else [])]:
        table.add_column(column, justify="left" if column == "codec" else "right")
    for entry in summary(rows, modality):
        digits = 3 if modality != "audio" else 1
        bd = rates["codecs"].get(entry["codec"])
        value, valid, total = (bd["bd_rate_percent"], bd["files"], bd["of"]) if bd else (math.nan, 0, 0)
        bd_text = "anchor" if entry["codec"] == reference else (f"{value:+.1f}%" + (f" ({valid}/{total})" if valid != total else "") if valid else "—")
        cells = [
            entry["codec"], str(entry["points"]),
            _range(entry["rate_min"], entry["rate_max"], digits),
            _range(entry["psnr_min"], entry["psnr_max"], 2),
        ]
        if extra:
            d = 4 if modality == "image" else 2
            cells.append(_range(entry["extra_min"], entry["extra_max"], d))
        cells += [_number(entry["encode_s"]), _number(entry["decode_s"]), *([bd_text] if with_bd else [])]
        table.add_row(*cells)
    return table


def bench_command(
    modality: str = typer.Option("image", "--modality", help="image, audio or volume."),
    sizes: str | None = typer.Option(None, "--sizes", metavar="LIST", help="Comma-separated input sizes: megapixels (image, default 0.25,1,4,16), seconds (audio, default 10,60,600) or megavoxels (volume, default 1,4,16)."),
    threads: int = typer.Option(0, "--threads", min=0, metavar="N", help="CPU threads of each measured process (OMP_NUM_THREADS; 0: the default)."),
    device: str = typer.Option("cpu", "--device", help="cpu, or cuda to time walloc's tensor stages on the GPU (images)."),
    source: Path | None = typer.Option(None, "--source", metavar="PATH", help="Real data to build the inputs from: a photo, an audio file, a .npy volume, or a folder of them. Default: data/photos/test, data/music/test or data/volumes."),
    runs: int = typer.Option(5, "--runs", min=0, metavar="N", help="Whole-process rows: run walloc compress/decompress (and cwebp/dwebp for images) as commands N times per size and report the median wall time, start-up included, and walloc's ratio to the classic tool; 0 skips them."),
    json_path: Path | None = typer.Option(None, "--json", metavar="FILE", help="Also write the rows as JSON to FILE."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite the --json file."),
) -> None:
    """Speed: encode and decode throughput, peak memory and how time grows with size, walloc beside the classic codec, one fresh process per measurement; and the whole-process time of a command, as a shell loop pays it."""
    from walloc_cli.eval.speed import process_ratios, run_bench, write_rows

    if json_path is not None and json_path.exists() and not force:
        _line(f"{json_path}: already exists (use -f to overwrite)")
        raise typer.Exit(1)
    try:
        rows, notes = run_bench(modality, _split(sizes), threads, device, source, progress=lambda text: err.print(f"  {text}", markup=False), runs=runs)
    except (WallocError, OSError) as error:
        _line(str(error))
        raise typer.Exit(1) from None
    for note in notes:
        err.print(f"note: {note}", markup=False, soft_wrap=True)
    if not rows:
        _line("nothing was measured")
        raise typer.Exit(1)
    out.print(_speed_table(rows, modality, device, threads))
    ratios = process_ratios(rows)
    if ratios:
        out.print(_ratio_table(ratios, rows[0].size_unit, runs))
    if json_path is not None:
        try:
            write_rows(rows, json_path, force)
        except (FileExistsError, OSError) as error:
            _line(str(error))
            raise typer.Exit(1) from None
        out.print(f"wrote {json_path}", markup=False)


def _speed_table(rows: list[SpeedRow], modality: str, device: str, threads: int) -> Table:
    """``walloc bench``'s table: one row per timed call (codec, operation, size), its time,
    throughput (and for audio the multiple of real time), peak and extra memory, coded bytes."""
    from rich.table import Table

    first = rows[0]
    process = " (process) rows: the whole command, start-up included, median of its runs;" if any(r.operation.endswith("(process)") for r in rows) else ""
    table = Table(title=f"{modality} speed on {device}, threads {threads or 'default'};{process} peak = process RSS{' (GPU memory for core rows)' if device == 'cuda' else ''}, extra = above the process before the call")
    for column in ["codec", "operation", f"size {first.size_unit}", "seconds", first.throughput_unit, *(["× real time"] if modality == "audio" else []), "peak MiB", "extra MiB", "coded bytes"]:
        table.add_column(column, justify="left" if column in ("codec", "operation") else "right")
    for row in rows:
        table.add_row(
            row.codec, row.operation, f"{row.size:g}", f"{row.seconds:.3f}", f"{row.throughput:.2f}",
            *([f"{row.realtime:.0f}"] if modality == "audio" else []),
            _number(row.peak_mib, 0), _number(row.extra_mib, 0), str(row.coded_bytes),
        )
    return table


def _ratio_table(ratios: list[dict[str, Any]], unit: str, runs: int) -> Table:
    """``walloc bench``'s whole-process comparison: per size and operation, walloc's median wall
    time beside the classic codec's command-line tool and the ratio (a shell loop's cost per file)."""
    from rich.table import Table

    from walloc_cli.eval.speed import PROCESS_TOOLS

    table = Table(title=f"whole process, median of {runs} run{'s' if runs != 1 else ''}: walloc (python -m walloc_cli) beside the classic tool")
    for column in ("operation", f"size {unit}", "walloc s", "tool", "tool s", "ratio"):
        table.add_column(column, justify="left" if column in ("operation", "tool") else "right")
    tools = {codec: (encoder, decoder) for codec, encoder, decoder in PROCESS_TOOLS.values()}
    for entry in ratios:
        encoder, decoder = tools[entry["codec"]]
        table.add_row(entry["operation"].removesuffix(" (process)"), f"{entry['size']:g}", f"{entry['walloc_s']:.3f}", encoder if entry["operation"].startswith("compress") else decoder, f"{entry['codec_s']:.3f}", f"{entry['ratio']:.1f}x")
    return table
