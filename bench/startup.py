"""Whole-process time of ``walloc`` commands beside ``cwebp``/``dwebp``, and what start-up imports.

What a shell loop (``for f in *.png; do walloc compress "$f"; done``) pays per file: each
command is a fresh process. For a 640x400 photo (``samples/photo.png`` resized with Pillow,
Lanczos) and a 3.4 MP photo (default: libjxl's ``flower.png``, 2268x1512, from the data sources),
the median wall time of 5 runs after an untimed one (:func:`walloc_cli.eval.speed.time_process`)
of

* ``python -m walloc_cli compress IN.png -o OUT.wlc -f`` (walloc's defaults: ``-q 75``, PSNR
  measured) and ``decompress OUT.wlc -o BACK.png -f``, beside ``cwebp IN.png -o OUT.webp`` and
  ``dwebp OUT.webp -o BACK.png`` (their defaults);
* the floor: ``python -c pass``, ``python -m walloc_cli --version``, ``python -c "import torch"``;

and the cumulative ``python -X importtime`` of the top-level packages ``--version`` and
``compress`` load. Each checkout's ``walloc_cli`` is byte-compiled first (``python -m compileall``),
as ``pip install`` leaves an installed package: without it, under ``PYTHONDONTWRITEBYTECODE=1``
(these machines set it), every run compiled walloc's modules from source (measured: 112 ms of
walloc's import time against 61 ms with bytecode, a 640x400 compress). ``--base DIR`` also times a checkout of another commit (``git archive REV |
tar -x -C DIR``) in the same run. Writes Markdown to standard output.

    python bench/startup.py [--photo-3mp PATH] [--base DIR] > bench/results/startup.md
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from walloc_cli.eval.speed import time_process

ROOT = Path(__file__).resolve().parent.parent
FLOWER = Path("/work/data/sources/libjxl-testdata/usr/share/libjxl-testdata/jxl/flower/flower.png")
RUNS = 5


def env_for(checkout: Path) -> dict[str, str]:
    """This environment with ``checkout``'s walloc first on the path, one OpenMP thread."""
    return {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}


def importtime(args: list[str], checkout: Path) -> collections.Counter[str]:
    """Milliseconds of ``python -X importtime ARGS``'s own import time per top-level package."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], env=env_for(checkout), capture_output=True, text=True, check=True)
    spent: collections.Counter[str] = collections.Counter()
    for match in re.finditer(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)$", done.stderr, re.MULTILINE):
        spent[match.group(2).split(".")[0]] += int(match.group(1)) / 1000
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo-3mp", type=Path, default=FLOWER, help="the 3.4 MP photo (PNG)")
    parser.add_argument("--base", type=Path, help="also time this checkout (another commit), as 'before'")
    args = parser.parse_args()
    checkouts = {"after": ROOT} | ({"before": args.base} if args.base else {})
    for checkout in checkouts.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(checkout / "walloc_cli")], check=True, stdout=subprocess.DEVNULL)
    walloc = [sys.executable, "-m", "walloc_cli"]
    with tempfile.TemporaryDirectory(prefix="walloc-startup-") as folder:
        work = Path(folder)
        os.chdir(work)  # `python -m` puts the working folder first on sys.path, before PYTHONPATH
        with Image.open(ROOT / "samples" / "photo.png") as photo:
            photo.convert("RGB").resize((640, 400), Image.LANCZOS).save(work / "640x400.png")
        shutil.copy(args.photo_3mp, work / "3.4mp.png")
        print(f"# Start-up and whole-process time (`bench/startup.py`)\n\n"
              f"{os.cpu_count()} cores, Python {platform.python_version()} (`{sys.executable}`, not a pyenv shim), "
              f"OMP_NUM_THREADS=1, median of {RUNS} runs after an untimed one, all in one run; load average before: "
              f"{os.getloadavg()[0]:.2f}.\n")
        print("| command | " + " | ".join(checkouts) + " |\n|---|" + "---|" * len(checkouts))
        floor = {
            "`python -c pass`": [sys.executable, "-c", "pass"],
            "`walloc --version`": [*walloc, "--version"],
            "`python -c 'import torch'`": [sys.executable, "-c", "import torch"],
            "`walloc models --json`": [*walloc, "models", "--json"],
        }
        for label, command in floor.items():
            print(f"| {label} | " + " | ".join(f"{time_process(command, RUNS, env_for(c)):.3f} s" for c in checkouts.values()) + " |")
        print("\n| input | command | walloc (" + ", ".join(checkouts) + ") | classic | ratio (" + ", ".join(checkouts) + ") |\n|---|---|---|---|---|")
        for name in ("640x400", "3.4mp"):
            source, coded, webp = work / f"{name}.png", work / f"{name}.wlc", work / f"{name}.webp"
            classic = {
                "compress": ("cwebp", ["cwebp", "-quiet", str(source), "-o", str(webp)]),
                "decompress": ("dwebp", ["dwebp", "-quiet", str(webp), "-o", str(work / f"{name}.webp.png")]),
            }
            for operation, (tool, tool_command) in classic.items():
                ours = [*walloc, "compress", str(source), "-o", str(coded), "-f"] if operation == "compress" else [*walloc, "decompress", str(coded), "-o", str(work / f"{name}.back.png"), "-f"]
                times = [time_process(ours, RUNS, env_for(c)) for c in checkouts.values()]
                theirs = time_process(tool_command, RUNS) if shutil.which(tool) else float("nan")
                print(f"| {name} | {operation} | " + " / ".join(f"{t:.3f} s" for t in times) + f" | {tool} {theirs:.3f} s | " + " / ".join(f"{t / theirs:.1f}x" for t in times) + " |")
        for label, command in (("walloc --version", ["-m", "walloc_cli", "--version"]), ("walloc compress 640x400.png", ["-m", "walloc_cli", "compress", str(work / "640x400.png"), "-o", str(work / "x.wlc"), "-f"])):
            for checkout_name, checkout in checkouts.items():
                spent = importtime(command, checkout)
                top = ", ".join(f"{package} {ms:.0f}" for package, ms in spent.most_common(12))
                print(f"\n`python -X importtime {label}` ({checkout_name}), ms per top-level package, own time summed: {top}; total {sum(spent.values()):.0f} ms.")


if __name__ == "__main__":
    main()
