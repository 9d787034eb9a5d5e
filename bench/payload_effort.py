"""Lossless-WebP effort for the latent payload: bytes and encode time per method/quality.

Encodes each photo of DIR with each shipped image model, then codes its latent planes (the
RGB-packed layout of walloc_cli/format/payload.py) with every WebP lossless method, and as PNG.
Total bytes and total encode seconds over the photos; best of 2 runs.

    python bench/payload_effort.py [DIR]
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from walloc_cli.files.images import read_image
from walloc_cli.format.payload import _to_plane
from walloc_cli.model.zoo import available_models, load_network


def main(folder: Path) -> None:
    for card in available_models():
        if card.modality == "image":
            print(f"model {card.name}")
            effort_table(folder, card.name)


def effort_table(folder: Path, name: str) -> None:
    model, _ = load_network(name)
    planes = []
    for path in sorted(folder.glob("*.png")):
        image = read_image(path)
        x = torch.from_numpy(image.float_pixels())[None] - 0.5
        planes.append(_to_plane(model.encode(x)[0].numpy(), model.cfg.bits))
    print(f"{len(planes)} photos from {folder}; {sum(p.shape[0] * p.shape[1] for p in planes) / 1e6:.2f} M latent pixels")
    print(f"{'coder':<16}{'bytes':>10}{'seconds':>10}")
    settings = [("webp", m, q) for m, q in ((0, 0), (1, 10), (2, 25), (3, 40), (4, 50), (5, 75), (6, 100))] + [("png", 9, 0)]
    for codec, method, quality in settings:
        best, total = float("inf"), 0
        for _ in range(2):
            started, total = time.perf_counter(), 0
            for plane in planes:
                buffer = io.BytesIO()
                if codec == "webp":
                    Image.fromarray(plane).save(buffer, format="WEBP", lossless=True, method=method, quality=quality)
                else:
                    Image.fromarray(plane).save(buffer, format="PNG", compress_level=method)
                total += len(buffer.getvalue())
            best = min(best, time.perf_counter() - started)
        label = f"webp m{method} q{quality}" if codec == "webp" else f"png level {method}"
        print(f"{label:<16}{total:>10}{best:>10.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/photos/test"))
