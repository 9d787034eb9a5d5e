"""Peak memory (RSS) of ``walloc compress``/``decompress`` on large and hostile inputs.

Builds, under ``--work`` (default ``/tmp/walloc-memory``; never the repository):

* ``photo-67mp.png`` and ``photo-150mp.png``: ``samples/photo.png`` upscaled (Lanczos) to
  10000 x 6700 and 15000 x 10000 pixels;
* ``zeros-12000.png``: a 12000 x 12000 black PNG (140 KB; it took more than 8 GB to compress);
* ``const-8192.wlc`` / ``const-16384.wlc``: CRC-valid image files of a few hundred bytes whose
  constant latents declare 8192**2 and 16384**2 pixels (24 s and 4.3 GB, and more than 8 GB,
  to decode before);
* ``vol-1024-one-tile.wlc``: a 1.3 KB volume file declaring 1024**3 float64 voxels as one tile
  (3 GB, then a segfault, before), and ``vol-1024-tiles.wlc``: the same volume in the default
  tiles (4.7 GB and still running after 4 minutes before); ``vol-512-tiles.wlc``: 512**3
  float64 in the default tiles, within the default limit, decoded;

then runs each command in its own process under ``/usr/bin/time -v`` and prints a Markdown table:
peak RSS ("Maximum resident set size"), the samples the command must hold anyway (the input
image's for compress, the decoded output's for decompress: what the 1 GB budget comes on top
of), wall time and what walloc said. ``--slow`` adds the raised-limit decode of
the 1024**3 volume (about half an hour on 2 cores).

    python bench/memory.py [--work DIR] [--out bench/results/memory.md] [--slow]
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from walloc_cli.codecs.image import encode_image  # noqa: E402
from walloc_cli.format.container import Chunk, dumps, loads  # noqa: E402
from walloc_cli.files.images import image_from_array  # noqa: E402
from walloc_cli.format.payload import encode_planes, pack_images  # noqa: E402
from walloc_cli.model.zoo import load_model  # noqa: E402
from walloc_cli.codecs.volume_tiles import TILE  # noqa: E402
from walloc_cli.codecs.tiles import latent_grid, tiles  # noqa: E402

MIB = 1 << 20


def build_photo(path: Path, width: int, height: int) -> None:
    """``samples/photo.png`` upscaled to ``width x height`` (PNG, fast zlib level)."""
    from PIL import Image

    if path.exists():
        return
    with Image.open(ROOT / "samples" / "photo.png") as photo:
        photo.convert("RGB").resize((width, height), Image.LANCZOS).save(path, compress_level=1)


def build_zeros(path: Path, side: int) -> None:
    """A black ``side x side`` RGB PNG (about 140 KB at 12000**2)."""
    if path.exists():
        return
    from PIL import Image

    Image.new("RGB", (side, side)).save(path, optimize=True)


def build_constant_image(path: Path, side: int) -> None:
    """A CRC-valid ``rgb-16x-v`` file declaring ``side x side`` pixels whose latents are all 0."""
    data = encode_image(image_from_array(np.zeros((8, 8, 3), np.uint8)), "rgb-16x-v")
    header, chunks = loads(data)
    header = copy.deepcopy(header)
    latent_dim, bits = header["latent"]["shape"][0], header["latent"]["bits"]
    shape = (latent_dim, side // 8, side // 8)
    planes = encode_planes(np.zeros(shape, np.int8), bits, "webp", 0)
    header["image"].update(height=side, width=side)
    header["latent"].update(shape=list(shape), chunks=len(planes))
    path.write_bytes(dumps(header, [Chunk("LATN", p) for p in planes] + [c for c in chunks if c.type != "LATN"]))


def build_constant_volume(path: Path, side: int, one_tile: bool) -> None:
    """A CRC-valid ``ct-3d-8x-v`` file declaring ``side**3`` float64 voxels, latents all 0, as
    one tile or in the default tiles."""
    reference = ROOT / "formats" / "reference" / "volume" / "ct-int16-20x136x40.wlc"
    header, _ = loads(reference.read_bytes())
    header = copy.deepcopy(header)
    codec, _ = load_model(header["model"]["name"])
    shape = [side, side, side]
    grid = latent_grid(tuple(shape), codec.cfg.block)
    size = grid if one_tile else TILE
    header["volume"].update(shape=shape, dtype="float64")
    header["volume"]["meta"]["shape"] = shape
    header["latent"]["tile"] = list(size)
    bits, payload = header["latent"]["bits"], header["latent"]["payload"]
    images: dict[tuple[int, ...], bytes] = {}
    chunks = []
    for tile in tiles(grid, size):
        if tile.extent not in images:  # equal extents give equal images: code each once
            images[tile.extent] = pack_images(encode_planes(np.zeros((codec.cfg.latent_dim, *tile.extent), np.int8), bits, payload, 0))
        chunks.append(Chunk("VOLT", struct.pack("<6I", *tile.origin, *tile.extent) + images[tile.extent]))
    path.write_bytes(dumps(header, chunks))


def measure(args: list[str], cwd: Path) -> dict[str, object]:
    """Run ``walloc ARGS`` under ``/usr/bin/time -v``: peak RSS (MiB), seconds, exit status and
    walloc's last line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "walloc_cli", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith(("walloc:", str(cwd), "photo", "zeros", "const", "vol")) or " -> " in line]
    return {"rss": int(found.group(1)) / 1024 if found else float("nan"), "seconds": seconds, "code": done.returncode, "said": said[-1] if said else done.stderr.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/walloc-memory"))
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this Markdown file")
    parser.add_argument("--slow", action="store_true", help="also decode the 1024**3 volume with the limit raised")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    options = parser.parse_args()
    work = options.work
    work.mkdir(parents=True, exist_ok=True)
    build_photo(work / "photo-67mp.png", 10000, 6700)
    build_photo(work / "photo-150mp.png", 15000, 10000)
    build_zeros(work / "zeros-12000.png", 12000)
    for side in (8192, 16384):
        build_constant_image(work / f"const-{side}.wlc", side)
    build_constant_volume(work / "vol-1024-one-tile.wlc", 1024, True)
    build_constant_volume(work / "vol-1024-tiles.wlc", 1024, False)
    build_constant_volume(work / "vol-512-tiles.wlc", 512, False)
    raised = ["--max-pixels", str(1 << 28)]
    voxels = ["--max-voxels", str(1 << 31)]
    cases: list[tuple[str, list[str], int]] = [  # name, arguments, decoded output bytes
        ("compress 67 MP photo", ["compress", "-f", "photo-67mp.png"], 10000 * 6700 * 3),
        ("decompress 67 MP photo", ["decompress", "-f", "-o", "photo-67mp.out.png", "photo-67mp.wlc"], 10000 * 6700 * 3),
        ("compress 150 MP photo", ["compress", "-f", "-o", "photo-150mp-default.wlc", "photo-150mp.png"], 0),
        ("compress 150 MP photo, limit raised", ["compress", "-f", *raised, "photo-150mp.png"], 15000 * 10000 * 3),
        ("decompress 150 MP photo", ["decompress", "-f", "-o", "photo-150mp.out.png", "photo-150mp.wlc"], 0),
        ("decompress 150 MP photo, limit raised", ["decompress", "-f", *raised, "-o", "photo-150mp.out.png", "photo-150mp.wlc"], 15000 * 10000 * 3),
        ("compress 12000^2 zeros PNG", ["compress", "-f", "-o", "zeros-default.wlc", "zeros-12000.png"], 0),
        ("compress 12000^2 zeros PNG, limit raised", ["compress", "-f", *raised, "zeros-12000.png"], 12000 * 12000 * 3),
        ("decompress const 8192^2 .wlc", ["decompress", "-f", "const-8192.wlc"], 8192 * 8192 * 3),
        ("decompress const 16384^2 .wlc", ["decompress", "-f", "const-16384.wlc"], 0),
        ("decompress const 16384^2 .wlc, limit raised", ["decompress", "-f", *raised, "const-16384.wlc"], 16384 * 16384 * 3),
        ("decompress 1024^3 float64 volume, one tile", ["decompress", "-f", "vol-1024-one-tile.wlc"], 0),
        ("decompress 1024^3 float64 volume, one tile, limit raised", ["decompress", "-f", *voxels, "vol-1024-one-tile.wlc"], 0),
        ("decompress 1024^3 float64 volume, default tiles", ["decompress", "-f", "vol-1024-tiles.wlc"], 0),
        ("decompress 512^3 float64 volume, default tiles", ["decompress", "-f", "vol-512-tiles.wlc"], 512**3 * 8),
    ]
    if options.slow:
        cases.append(("decompress 1024^3 float64 volume, default tiles, limit raised", ["decompress", "-f", *voxels, "vol-1024-tiles.wlc"], 1024**3 * 8))
    rows = ["| case | input bytes | peak RSS (MiB) | image/volume samples (MiB) | RSS beyond them (MiB) | seconds | exit | walloc said |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    print(rows[0], rows[1], sep="\n", flush=True)
    for name, arguments, output in cases:
        if options.only and options.only not in name:
            continue
        source = work / arguments[-1]
        result = measure(arguments, work)
        out_mib = output / MIB if result["code"] == 0 else 0.0
        said = str(result["said"]).replace(str(work) + "/", "").replace("|", "/")
        row = f"| {name} | {source.stat().st_size} | {result['rss']:.0f} | {out_mib:.0f} | {float(result['rss']) - out_mib:.0f} | {result['seconds']:.1f} | {result['code']} | {said} |"
        rows.append(row)
        print(row, flush=True)
    if options.out is not None:
        threads = os.environ.get("OMP_NUM_THREADS", "2")
        preamble = (
            f"Peak RSS (`/usr/bin/time -v`) of `walloc` commands, {os.cpu_count()} CPU cores, OMP_NUM_THREADS={threads}, "
            f"{time.strftime('%Y-%m-%d')}; `python bench/memory.py --out {options.out}`. \"samples\" is what the command "
            "must hold anyway: the input image (compress) or the decoded output (decompress).\n\n"
        )
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(preamble + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
