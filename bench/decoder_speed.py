"""CPU decode speed of the 16x RGB model for several decoder sizes (the size/speed trade-off).

Times ``WallocCodec.decode`` (decoder CNN + inverse WPT) on random 8-bit latents of a
1920x2136 (4.1 MP) image; best of 3 after a warm-up, torch's default thread count.

    python bench/decoder_speed.py
"""

from __future__ import annotations

import time

import torch

from walloc_cli.model.config import CodecConfig
from walloc_cli.model.network import WallocCodec

HEIGHT, WIDTH = 1920, 2136

if __name__ == "__main__":
    print(f"{'channels':>9}{'blocks':>8}{'params':>10}{'decode s':>10}{'MP/s':>8}")
    for channels, blocks in ((32, 4), (64, 4), (96, 4), (128, 4), (192, 4), (64, 8)):
        model = WallocCodec(CodecConfig(decoder_channels=channels, decoder_blocks=blocks)).eval()
        q = torch.randint(-20, 21, (1, 12, HEIGHT // 8, WIDTH // 8), dtype=torch.int32)
        model.decode(q, (HEIGHT, WIDTH))
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            model.decode(q, (HEIGHT, WIDTH))
            best = min(best, time.perf_counter() - started)
        params = sum(p.numel() for p in model.decoder.parameters())
        print(f"{channels:>9}{blocks:>8}{params / 1e6:>9.2f}M{best:>10.3f}{HEIGHT * WIDTH / 1e6 / best:>8.2f}")
