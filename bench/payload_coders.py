"""Lossless coders of the same integer latents: bytes and encode/decode time per coder and effort.

The latents are those a ``walloc compress`` at the default ladder (``-q``) stores: of
``samples/photo.png`` and of any real photos given (``--photo``; JPEG/PNG, decoded to RGB) at
q 10/50/75/95, and of the audio and volume reference files under ``formats/reference/`` (their
stored latents, read back with :func:`walloc_cli.api.latents.read_latents`). Each set is coded by

* ``webp4``/``webp6``: today's payload (lossless WebP, RGB triplets of channels) at effort 4 / 6,
* ``png``: the same planes as PNG,
* ``webp4-split``: the issue's low-pass/high-pass split for WebP: the model's first ``channels``
  latent channels (the low-pass ones: 3 for RGB) in an image of their own, the rest in another,
* ``jxl1`` .. ``jxl9``: the ``jxl`` payload at libjxl effort 1..9 (planar, one thread),
* ``ctx``: the ``ctx`` payload (format 2.2: context model and range coder).

Every coding is decoded and checked equal to the latents. Reported: bytes relative to ``webp4``,
and milliseconds per million latent values to encode and to decode (best of ``--repeat`` runs;
a single run for libjxl effort >= 7, which takes seconds). Single-threaded, in-process.

    OMP_NUM_THREADS=1 python bench/payload_coders.py [--photo PATH ...] [--out bench/results/payload_coders.md]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from walloc_cli.api.arrays import compress
from walloc_cli.api.latents import read_latents
from walloc_cli.format import payload_jxl
from walloc_cli.format.payload import decode_planes, encode_planes

ROOT = Path(__file__).resolve().parent.parent
QUALITIES = (10, 50, 75, 95)
CODERS = ["webp4", "webp6", "png", "webp4-split"] + [f"jxl{e}" for e in range(1, 10)] + ["ctx"]
Coder = tuple[Callable[[], list[bytes]], Callable[[list[bytes]], np.ndarray]]


def coder(name: str, q: np.ndarray, bits: int, low: int) -> Coder:
    """``(encode, decode)`` of latents ``q`` ``(L, *S)`` by the coder ``name``."""
    if name.startswith("jxl"):
        level = int(name[3:])
        return (lambda: list(payload_jxl.encode_at(q, bits, level))), (lambda c: decode_planes(c, q.shape, bits, "jxl"))
    if name == "webp4-split":
        parts = [q[:low], q[low:]] if 0 < low < q.shape[0] else [q]

        def encode() -> list[bytes]:
            return [b"".join(encode_planes(part, bits, "webp", 4)) for part in parts]  # one image each here

        def decode(chunks: list[bytes]) -> np.ndarray:
            return np.concatenate([decode_planes([c], part.shape, bits, "webp") for c, part in zip(chunks, parts)])

        return encode, decode
    codec, effort = ("png", 4) if name == "png" else ("ctx", 4) if name == "ctx" else ("webp", int(name[4:]))
    return (lambda: encode_planes(q, bits, codec, effort)), (lambda c: decode_planes(c, q.shape, bits, codec))  # type: ignore[arg-type]


def best(function: Callable[[], object], repeat: int) -> tuple[object, float]:
    result, seconds = None, float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        seconds = min(seconds, time.perf_counter() - start)
    return result, seconds


def latent_sets(photos: list[Path]) -> dict[str, list[tuple[np.ndarray, int, int]]]:
    """Named groups of ``(latents (L, *S), bits, low-pass channels)``."""
    sets: dict[str, list[tuple[np.ndarray, int, int]]] = defaultdict(list)
    for path in [ROOT / "samples" / "photo.png", *photos]:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        group = "photo.png" if path.name == "photo.png" else "other photos"
        for quality in QUALITIES:
            q, info = read_latents(compress(pixels, quality=quality))
            sets[f"{group} q{quality}"].append((q, info.bits, int(info.codec["channels"])))
    for modality in ("audio", "volume"):
        for path in sorted((ROOT / "formats" / "reference" / modality).glob("*.wlc")):
            latents, info = read_latents(path.read_bytes())
            if info.header["latent"]["payload"] != "webp":
                continue  # the same signals again
            for q in latents if isinstance(latents, list) else [latents]:
                q = q.reshape(-1, q.shape[-1]) if modality == "audio" else q  # as the audio codec lays out its blocks
                sets[f"{modality} (reference files)"].append((q, info.bits, 0))
    return sets


def measure(sets: dict[str, list[tuple[np.ndarray, int, int]]], repeat: int) -> dict[str, dict[str, tuple[int, float, float]]]:
    """``{set: {coder: (bytes, encode ms per M values, decode ms per M values)}}``."""
    table: dict[str, dict[str, tuple[int, float, float]]] = {}
    for name, items in sets.items():
        values = sum(q.size for q, _, _ in items) / 1e6
        row = {}
        for coder_name in CODERS:
            size, encode_s, decode_s = 0, 0.0, 0.0
            runs = 1 if coder_name in ("jxl7", "jxl8", "jxl9") else repeat
            for q, bits, low in items:
                encode, decode = coder(coder_name, q, bits, low)
                chunks, seconds = best(encode, runs)
                decoded, back = best(lambda: decode(chunks), runs)  # type: ignore[arg-type]
                assert np.array_equal(decoded, q), (name, coder_name)
                size += sum(len(c) for c in chunks)  # type: ignore[union-attr]
                encode_s, decode_s = encode_s + seconds, decode_s + back
            row[coder_name] = (size, 1e3 * encode_s / values, 1e3 * decode_s / values)
        table[name] = row
        print(name, {k: v[0] for k, v in row.items()}, flush=True)
    return table


def markdown(table: dict[str, dict[str, tuple[int, float, float]]], sets: dict[str, list[tuple[np.ndarray, int, int]]]) -> str:
    lines = ["| latents | values | coder | bytes | vs webp4 | encode ms/M | decode ms/M |", "|---|---:|---|---:|---:|---:|---:|"]
    for name, row in table.items():
        values = sum(q.size for q, _, _ in sets[name])
        base = row["webp4"][0]
        for coder_name, (size, encode_ms, decode_ms) in row.items():
            lines.append(f"| {name} | {values} | {coder_name} | {size} | {100 * (size / base - 1):+.1f}% | {encode_ms:.0f} | {decode_ms:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, action="append", default=[], help="a real photo (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    args = parser.parse_args()
    sets = latent_sets(args.photo)
    text = markdown(measure(sets, args.repeat), sets)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
