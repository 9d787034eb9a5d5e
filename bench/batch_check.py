"""Done-when check of issue 7: a batch of >= 50 mixed inputs with a few corrupt ones, ``--jobs 2``.

    OMP_NUM_THREADS=1 python bench/batch_check.py [--jobs 2] [--keep DIR]

Builds a folder tree in a temporary directory from the real data sets (build them first with
``walloc data photos``, ``walloc data music``, ``walloc data speech``, ``walloc data volumes``):

- ``photos/``: every photo of ``data/photos`` (train, val and test: 42 when built);
- ``audio/``: 8 music and 4 speech files cut to their first 3 seconds with soundfile
  (the cuts keep each file's rate, channels and sample format);
- ``volumes/``: 3 crops (8 slices or bands of at most 96x96) of the ``data/volumes`` arrays, as
  ``.npy``, when this walloc codes volumes (one is tried first; if it fails they are left out
  and the reason is printed);
- ``corrupt/``: 4 damaged files with supported signatures (a truncated PNG, a PNG header over
  garbage, a WAV whose samples are cut short, a truncated FLAC), and one text file (skipped,
  not an input).

Then runs ``walloc compress -r --jobs N SRC -O OUT --json`` in a subprocess and checks: every
good input has its ``.wlc`` (and it verifies), every corrupt one is named on standard error,
the text file is skipped with a note, and the exit status is 1. Prints the counts and the time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


def volumes_work(sample: Path, root: Path) -> bool:
    """Whether this walloc compresses volumes yet (they are being added): try ``sample``."""
    from walloc_cli.api.files import compress_file
    from walloc_cli.errors import WallocError

    try:
        compress_file(sample, root / "probe.wlc", measure=False)
    except WallocError as error:
        print(f"volumes left out: {sample.name}: {error}")
        return False
    (root / "probe.wlc").unlink()
    return True


def build_tree(root: Path) -> tuple[list[Path], list[Path], Path]:
    """Write the mixed inputs under ``root``; return (good inputs, corrupt inputs, skipped file)."""
    good: list[Path] = []
    photos = root / "photos"
    photos.mkdir(parents=True)
    for source in sorted((DATA / "photos").rglob("*.png")):
        target = photos / source.parent.name / source.name
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)
        good.append(target)
    audio = root / "audio"
    audio.mkdir()
    speech = sorted(p for p in (DATA / "speech").rglob("*") if p.suffix in (".wav", ".flac"))
    clips = sorted((DATA / "music").rglob("*.flac"))[:8] + speech[:: max(1, len(speech) // 4)][:4]
    for source in clips:
        info = sf.info(str(source))
        samples, rate = sf.read(str(source), frames=int(3 * info.samplerate), dtype="float32", always_2d=True)
        target = audio / f"{source.parent.name}_{source.stem}{source.suffix}"
        sf.write(str(target), samples, rate, subtype=info.subtype, format=info.format)
        good.append(target)
    volumes = root / "volumes"
    volumes.mkdir()
    for source in sorted((DATA / "volumes").rglob("*.npy"))[:: 4][:3]:
        array = np.load(source, mmap_mode="r")
        target = volumes / source.name
        np.save(target, np.ascontiguousarray(array[:8, :96, :96]))
        if volumes_work(target, root):
            good.append(target)
        else:
            target.unlink()
    corrupt = root / "corrupt"
    corrupt.mkdir()
    png = good[0].read_bytes()
    bad = [corrupt / "truncated.png", corrupt / "garbage.png", corrupt / "short.wav", corrupt / "cut.flac"]
    bad[0].write_bytes(png[: len(png) // 3])
    bad[1].write_bytes(png[:8] + os.urandom(200))
    sf.write(str(bad[2]), np.zeros((8000, 1), np.float32), 8000, subtype="PCM_16")
    bad[2].write_bytes(bad[2].read_bytes()[:5000])  # the header promises 16000 bytes of samples
    flac = next(p for p in good if p.suffix == ".flac").read_bytes()
    bad[3].write_bytes(flac[: len(flac) // 4])
    skipped = corrupt / "README.txt"
    skipped.write_text("not an input\n")
    return good, bad, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="Build the tree here and keep it.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="walloc-batch-"))
    try:
        src, out = folder / "in", folder / "out"
        good, bad, skipped = build_tree(src)
        command = [sys.executable, "-m", "walloc_cli", "compress", "-r", "--jobs", str(args.jobs), "--json", "--no-psnr", str(src), "-O", str(out)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
        seconds = time.perf_counter() - started
        records = [json.loads(line) for line in done.stdout.splitlines()]
        written = {Path(r["input"]) for r in records if "error" not in r}
        failed = {Path(r["input"]) for r in records if "error" in r}
        missing = [p for p in good if not (out / p.relative_to(src)).with_suffix(".wlc").is_file()]
        unnamed = [p for p in bad if f"walloc: {p}: " not in done.stderr]
        verify = subprocess.run([sys.executable, "-m", "walloc_cli", "verify", "-r", "--quiet", str(out)], capture_output=True, text=True)
        kinds = {"photos": 0, "audio": 0, "volumes": 0}
        for path in written:
            kinds[path.relative_to(src).parts[0]] = kinds.get(path.relative_to(src).parts[0], 0) + 1
        print(f"inputs: {len(good) + len(bad)} ({len(good)} good: " + ", ".join(f"{n} {k}" for k, n in kinds.items()) + f"; {len(bad)} corrupt) + 1 text file")
        print(f"walloc compress -r --jobs {args.jobs}: exit {done.returncode} in {seconds:.1f} s; {len(written)} written, {len(failed)} failed, skipped note: {'yes' if f'{skipped}: skipped' in done.stderr else 'NO'}")
        print(f"good inputs without output: {len(missing)}; corrupt inputs not named: {len(unnamed)}; walloc verify -r on the outputs: exit {verify.returncode}")
        for line in done.stderr.splitlines():
            print("  stderr: " + line)
        ok = done.returncode == 1 and not missing and not unnamed and failed == set(bad) and verify.returncode == 0
        print("RESULT: " + ("pass" if ok else "FAIL"))
        sys.exit(0 if ok else 1)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
