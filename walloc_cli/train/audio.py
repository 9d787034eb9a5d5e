"""Audio as training data: folders of audio files become mono streams for a 1-D model.

Files are held as their 16-bit (or wider, as float32) samples per channel; a crop picks a file
(weighted by length), an offset and one *coded stream* of it, exactly as the codec forms them
(:mod:`walloc_cli.codecs.audio_blocks`): the mid or side signal of a stereo file, or a channel of any
other, scaled by the file's gain (1 / peak) and halved. The model therefore trains on the very
signals it will code, side signals included.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch

from walloc_cli.files.audio import read_audio, sniff_audio
from walloc_cli.codecs.audio_blocks import BLOCK, gain_for_peak, stream_layout, to_streams
from walloc_cli.model.network import WallocCodec
from walloc_cli.errors import InputError


class AudioSet:
    """The audio files of a folder, as coded streams ``(1, n)`` in the model's normalisation."""

    def __init__(self, folder: Path) -> None:
        """``folder``: a folder of audio files, or a glob of them (``speech/train/*.8k.flac``:
        the 8 kHz half of the speech set)."""
        pattern = "*"
        if any(c in folder.name for c in "*?["):
            folder, pattern = folder.parent, folder.name
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder of audio files")
        self.streams: list[torch.Tensor] = []
        for path in sorted(folder.glob(pattern)):
            if not path.is_file() or not sniff_audio(path):
                continue
            samples, info = read_audio(path)
            gain = gain_for_peak(float(np.abs(samples).max(initial=0.0)))
            for stream in to_streams(samples.astype(np.float64), stream_layout(info.channels)):
                # float16 halves the memory of hours of audio; its 11-bit mantissa is relative,
                # so quiet passages keep their precision (-66 dB below each sample)
                self.streams.append(torch.from_numpy((stream * gain / 2).astype(np.float16))[None])
        if not self.streams:
            raise InputError(f"no audio files in {folder}")

    def batch(self, size: int, crop: int, rng: random.Random) -> torch.Tensor:
        """Random crops ``(size, 1, crop)`` float32, streams weighted by length (zero-padded if short)."""
        weights = [s.shape[-1] for s in self.streams]
        crops = []
        for stream in rng.choices(self.streams, weights=weights, k=size):
            length = stream.shape[-1]
            start = rng.randint(0, max(0, length - crop))
            piece = stream[:, start : start + crop].float()
            if piece.shape[-1] < crop:
                piece = torch.nn.functional.pad(piece, (0, crop - piece.shape[-1]))
            crops.append(piece)
        return torch.stack(crops)

    @torch.no_grad()
    def validate(self, model: WallocCodec, step: float = 1.0) -> dict[str, float]:
        """Real rate (lossless payload bits per sample of every stream) and PSNR relative to each
        file's own peak (the gain makes that the normalised signal's full scale), over all
        streams, in blocks of ``BLOCK`` samples (validation only: the codec adds context around
        blocks)."""
        from walloc_cli.format.container import default_major
        from walloc_cli.format.payload import encode_planes, resolve_payload

        payload = resolve_payload(None, default_major())  # the coder walloc compress uses

        model.eval()
        bits = samples = 0.0
        squared = 0.0
        for stream in self.streams:
            x = stream.float()[0]
            blocks = [x[i : i + BLOCK] for i in range(0, x.shape[0], BLOCK)]
            for block in blocks:
                signal = block[None, None]
                q = model.encode(signal, step)
                bits += 8 * sum(len(c) for c in encode_planes(q[0].numpy(), model.index_bits(step), payload))  # type: ignore[arg-type]
                # 2x = s / peak: the error relative to the file's peak
                squared += float(((model.decode(q, (block.shape[0],), step)[0, 0] - block) * 2).pow(2).sum())
                samples += block.shape[0]
        model.train()
        mse = squared / max(samples, 1)
        return {"bpp": bits / max(samples, 1), "psnr": 10 * math.log10(1 / max(mse, 1e-20))}
