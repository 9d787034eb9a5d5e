"""Beyond one machine: the Zarr codec on real volumes, and data set conversion on Dask workers.

Two measurements, each printing a Markdown table (``bench/results/distributed.md`` holds a run):

``zarr``: each volume is written to a Zarr v3 array through the walloc serializer
(:class:`walloc_cli.api.zarr3.WallocZarr3`) at each chunk shape given, read back with
``dask.array`` (2 threads), and compared with one ``walloc compress`` of the whole volume at the
same quality: rate in bits per voxel (the chunk objects' bytes; Zarr's small ``zarr.json`` left
out) and PSNR against the volume's data range, as ``walloc compress`` reports it::

    python bench/scale_out.py zarr ct_test.npy wv2_mul.tif --chunks 32,128,128 32,256,256 --quality 75

(A chunk shape is clipped to the volume; the cube's first axis is its bands.)

``convert``: each folder is converted with :func:`walloc_cli.api.distributed.convert_dataset` on a
``LocalCluster`` of 1 and then 2 worker processes (1 task thread each; the cluster is started
before the clock starts, its start time reported beside), and with ``walloc compress -r --jobs
N`` on the same files, in a fresh output folder each time: files/s, and the speed-up over 1
worker::

    python bench/scale_out.py convert /work/data/holdout speech/ --quality 75 --jobs 1 2 --repeat 2
    python bench/scale_out.py convert /work/data/holdout speech/ --jobs 1 2 --threads 1   # process scaling alone
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from walloc_cli.api.files import compress_file
from walloc_cli.files.volumes import read_volume


def zarr_rows(path: Path, chunk_shapes: list[tuple[int, int, int]], quality: float, work: Path) -> list[str]:
    import dask.array as da
    import zarr

    from walloc_cli.api.zarr3 import WallocZarr3, register

    register()  # an installed walloc's entry points do this; the bench may run from a checkout
    volume = read_volume(path)
    array = np.ascontiguousarray(volume.array)
    peak = float(array.max()) - float(array.min())
    whole = compress_file(path, work / f"{path.stem}.wlc", quality=quality)
    rows = [f"| {path.name} {'x'.join(map(str, array.shape))} {array.dtype} ({volume.kind}, {volume.coding_axes}) | `walloc compress` (whole volume) | {whole.bpv:.3f} | {whole.psnr:.2f} | {whole.seconds:.1f} | |"]
    for chunks in dict.fromkeys(tuple(min(c, s) for c, s in zip(shape, array.shape)) for shape in chunk_shapes):
        store = work / f"{path.stem}-{'x'.join(map(str, chunks))}.zarr"
        target = zarr.create_array(store, shape=array.shape, chunks=chunks, dtype=array.dtype, serializer=WallocZarr3(quality=quality, axes=volume.coding_axes), compressors=None)
        started = time.perf_counter()
        target[:] = array
        written = time.perf_counter() - started
        started = time.perf_counter()
        decoded = da.from_zarr(str(store)).compute(scheduler="threads", num_workers=2)
        read = time.perf_counter() - started
        stored = sum(p.stat().st_size for p in (store / "c").rglob("*") if p.is_file())
        error = np.mean((decoded.astype(np.float64) - array.astype(np.float64)) ** 2)
        psnr = 10 * math.log10(peak**2 / error) if error > 0 else math.inf
        rows.append(f"| | Zarr v3, chunks {'x'.join(map(str, chunks))} | {8 * stored / array.size:.3f} | {psnr:.2f} | {written:.1f} | {read:.1f} |")
    return rows


def zarr_table(args: argparse.Namespace) -> None:
    shapes = [tuple(int(n) for n in text.split(",")) for text in args.chunks]
    print(f"Zarr round trip at quality {args.quality:g} (PSNR against each volume's data range; seconds on this 2-core CPU, shared)\n")
    print("| volume | stored as | bits/voxel | PSNR dB | write s | read s (dask, 2 threads) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="walloc-bench-") as work:
        for path in args.volumes:
            for row in zarr_rows(Path(path), shapes, args.quality, Path(work)):  # type: ignore[arg-type]
                print(row, flush=True)


def dask_run(folder: Path, workers: int, quality: float, out: Path, threads: int | None = None) -> tuple[float, float, int, int]:
    """(cluster start s, conversion s, converted, failed). ``threads``: inference threads per
    worker instead of each worker's share of the cores."""
    from dask.distributed import Client, LocalCluster

    from walloc_cli.api.distributed import convert_dataset
    from walloc_cli.model.runtime import set_threads

    started = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:
        if threads is not None:
            client.run(set_threads, threads)
        ready = time.perf_counter()
        result = convert_dataset([folder], client, output_dir=out, options={"quality": quality}, balance_threads=threads is None)
        finished = time.perf_counter()
    return ready - started, finished - ready, len(result.converted), len(result.failures)


def cli_run(folder: Path, jobs: int, quality: float, out: Path) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "walloc_cli", "compress", "-r", "-q", str(quality), "--jobs", str(jobs), "-O", str(out), "--quiet", str(folder)], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    return seconds, done.returncode


def convert_table(args: argparse.Namespace) -> None:
    print(f"Data set conversion at quality {args.quality:g}, best of {args.repeat} runs: files/s and speed-up over 1 Dask worker; this 2-core CPU is shared with background training\n")
    print("| folder | files | MB in | run | cluster start s | convert s | files/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="walloc-bench-") as work:
        for text in args.folders:
            folder = Path(text)
            files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix != ".json"]
            size = sum(p.stat().st_size for p in files) / 1e6
            base = None
            for workers in args.jobs:
                runs = [dask_run(folder, workers, args.quality, Path(work) / f"dask{workers}-{folder.name}-{k}", args.threads) for k in range(args.repeat)]
                start, seconds, converted, failed = min(runs, key=lambda run: run[1])
                base = base or seconds
                note = f" ({failed} failed)" if failed else ""
                print(f"| {folder.name} | {converted}{note} | {size:.0f} | Dask, {workers} worker{'s' if workers > 1 else ''}{f' x {args.threads} thread' if args.threads else ''} | {start:.1f} | {seconds:.1f} | {converted / seconds:.2f} | {base / seconds:.2f}x |", flush=True)
            for jobs in [] if args.threads else args.jobs:  # --jobs shares the cores itself
                seconds, code = min(cli_run(folder, jobs, args.quality, Path(work) / f"cli{jobs}-{folder.name}-{k}") for k in range(args.repeat))
                print(f"| {folder.name} | {len(files)} | {size:.0f} | `walloc compress -r --jobs {jobs}`{' (exit ' + str(code) + ')' if code else ''} | | {seconds:.1f} (process start included) | {len(files) / seconds:.2f} | {base / seconds:.2f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    z = commands.add_parser("zarr", help="Zarr round trips of volumes")
    z.add_argument("volumes", nargs="+")
    z.add_argument("--chunks", nargs="+", default=["32,128,128", "32,256,256"])
    z.add_argument("--quality", type=float, default=75)
    c = commands.add_parser("convert", help="conversion of folders on Dask workers and with --jobs")
    c.add_argument("folders", nargs="+")
    c.add_argument("--jobs", nargs="+", type=int, default=[1, 2])
    c.add_argument("--quality", type=float, default=75)
    c.add_argument("--repeat", type=int, default=2, help="runs of each; the fastest is reported (the CPU is shared)")
    c.add_argument("--threads", type=int, help="inference threads per Dask worker (default: its share of the cores); skips the --jobs runs")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    zarr_table(args) if args.command == "zarr" else convert_table(args)


if __name__ == "__main__":
    main()
