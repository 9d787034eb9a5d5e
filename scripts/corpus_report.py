"""Print DATA.md's tables from a built corpus's manifests (``walloc data corpus``).

Usage: ``python scripts/corpus_report.py data/corpus`` -> Markdown on standard output: per
source package its version, licence(s) as the copyright file gives them, count per split,
resolution range (photos), minutes (audio) or voxels (volumes), and the totals with disk size.
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path


def _licences(files: list[dict]) -> str:
    counts = collections.Counter(f["licence"] or "(none named)" for f in files)
    return "; ".join(f"{name} ({n})" if len(counts) > 1 else name for name, n in counts.most_common())


def _splits(files: list[dict]) -> str:
    counts = collections.Counter(f["split"] for f in files)
    return ", ".join(f"{split} {counts[split]}" for split in ("train", "val", "test") if counts[split])


def _disk(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def photos(folder: Path) -> list[str]:
    manifest = json.loads((folder / "manifest.json").read_text())
    by_package: dict[str, list[dict]] = collections.defaultdict(list)
    for photo in manifest["photos"]:
        by_package[photo["package"]].append(photo)
    lines = ["| package | version | photos | split | size (px, after downscaling) | >= 1 MP | MP | licence (copyright file) |", "|---|---|---|---|---|---|---|---|"]
    for package, files in by_package.items():
        areas = [f["size"][0] * f["size"][1] for f in files]
        small = min(files, key=lambda f: f["size"][0] * f["size"][1])["size"]
        large = max(files, key=lambda f: f["size"][0] * f["size"][1])["size"]
        lines.append(
            f"| {package} | {files[0]['version']} | {len(files)} | {_splits(files)} | {small[0]}x{small[1]} – {large[0]}x{large[1]} "
            f"| {sum(a >= 1_000_000 for a in areas)} | {sum(areas) / 1e6:.1f} | {_licences(files)} |"
        )
    every = manifest["photos"]
    areas = [f["size"][0] * f["size"][1] for f in every]
    lines.append(
        f"| **total** | | **{len(every)}** | {_splits(every)} | | **{sum(a >= 1_000_000 for a in areas)}** | **{sum(areas) / 1e6:.0f}** | "
        f"{len(manifest['dropped'])} candidates dropped; {_disk(folder):.0f} MiB |"
    )
    return lines


def media(folder: Path, kind: str) -> list[str]:
    manifest = json.loads((folder / "manifest.json").read_text())
    by_package: dict[str, list[dict]] = collections.defaultdict(list)
    for item in manifest["files"]:
        by_package[item["package"]].append(item)
    if kind == "volumes":
        lines = ["| package | version | volumes | split | shapes (Z, Y, X) | megavoxels | licence |", "|---|---|---|---|---|---|---|"]
        for package, files in by_package.items():
            voxels = sum(f["shape"][0] * f["shape"][1] * f["shape"][2] for f in files) / 1e6
            shapes = ", ".join("x".join(map(str, f["shape"])) for f in files)
            lines.append(f"| {package} | {files[0]['version']} | {len(files)} | {_splits(files)} | {shapes} | {voxels:.2f} | {_licences(files)} |")
        return lines
    lines = ["| package | version | files | split | minutes | rate (Hz) | licence (copyright file) |", "|---|---|---|---|---|---|---|"]
    for package, files in by_package.items():
        minutes = sum(f["seconds"] for f in files) / 60
        rates = sorted({f["rate"] for f in files})
        lines.append(f"| {package} | {files[0]['version']} | {len(files)} | {_splits(files)} | {minutes:.1f} | {', '.join(map(str, rates))} | {_licences(files)} |")
    every = manifest["files"]
    lines.append(f"| **total** | | **{len(every)}** | {_splits(every)} | **{sum(f['seconds'] for f in every) / 60:.1f}** | | {len(manifest['dropped'])} dropped; {_disk(folder):.0f} MiB |")
    return lines


def main(root: Path) -> None:
    for name in ("photos", "speech", "music", "volumes"):
        if (root / name / "manifest.json").exists():
            print(f"### {name}\n")
            print("\n".join(photos(root / name) if name == "photos" else media(root / name, name)))
            print()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/corpus"))
