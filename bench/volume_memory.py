"""Peak memory of compressing and decompressing a 512 x 512 x 600 int16 CT (issue 5's bound: 2 GB).

The volume is made from the real head CT of ``walloc data volumes`` (its 108 slices of 256 x 256,
all three splits stacked back together) by trilinear upsampling to 600 x 512 x 512 int16 HU
(314 MB as .npy). Each step runs ``walloc`` in its own process under ``/usr/bin/time -v`` and
reports the maximum resident set size and the wall time.

    python bench/volume_memory.py [--workdir /tmp/walloc-ct] [-q 75]
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import numpy as np
import torch


def make_ct(path: Path) -> None:
    parts = sorted(Path("data/volumes/ct").glob("*/cranium_z*.npy"), key=lambda p: p.name)
    ct = np.concatenate([np.load(p) for p in parts])  # (108, 256, 256) int16
    x = torch.from_numpy(ct.astype(np.float32))[None, None]
    big = torch.nn.functional.interpolate(x, size=(600, 512, 512), mode="trilinear", align_corners=False)[0, 0]
    np.save(path, big.round().numpy().astype(np.int16))


def measured(command: list[str]) -> tuple[float, float, str]:
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=True)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))  # type: ignore[union-attr]
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", run.stderr).group(1)  # type: ignore[union-attr]
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return rss / 1024, seconds, run.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/walloc-ct"))
    parser.add_argument("-q", "--quality", default="75")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    src, wlc, out = args.workdir / "ct600.npy", args.workdir / "ct600.wlc", args.workdir / "ct600.out.npy"
    if not src.exists():
        make_ct(src)
    for path in (wlc, out):
        path.unlink(missing_ok=True)
    rss, seconds, line = measured(["walloc", "compress", str(src), "-o", str(wlc), "-q", args.quality])
    print(line)
    print(f"compress:   peak RSS {rss:7.0f} MiB, {seconds:6.1f} s")
    rss, seconds, line = measured(["walloc", "decompress", str(wlc), "-o", str(out)])
    print(line)
    print(f"decompress: peak RSS {rss:7.0f} MiB, {seconds:6.1f} s  (input {src.stat().st_size / 2**20:.0f} MiB, .wlc {wlc.stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
