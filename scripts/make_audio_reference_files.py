"""Write the reference audio ``.wlc`` files in ``formats/reference/audio/`` (kept forever; only
new cases are added). Each case: ``NAME.src.wav`` (the input, cut from the held-out test audio
or synthetic), ``NAME.wlc`` and ``NAME.out.wav`` (what this walloc decoded; tests allow 1 LSB).

    python scripts/make_audio_reference_files.py
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from walloc_cli.codecs.audio import compress_audio, decompress_audio
from walloc_cli.format.container import WlcReader, wlc_version

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "formats" / "reference" / "audio"


def cases() -> dict[str, tuple[np.ndarray, int, str, float]]:
    t = np.arange(70000) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-t), 0.2 * np.sin(2 * np.pi * 330 * t + 1) * np.exp(-2 * t)], axis=1)
    s = np.arange(4001) / 8000
    speech = 0.4 * np.sin(2 * np.pi * (150 + 40 * np.sin(2 * np.pi * 3 * s)) * s) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * s))
    return {
        # two blocks (a block boundary), mid/side streams, music model at q 50
        "stereo-44k-70000": (stereo, 44100, "PCM_16", 50.0),
        # narrow-band: the speech model (before speech8k-2x-v shipped), 9-bit indices at q 100
        "mono-8k-4001": (speech[:, None], 8000, "PCM_16", 100.0),
        # telephone band: the 8 kHz speech model (once it ships), q 50
        "mono-8k-speech8k-4001": (speech[:, None], 8000, "PCM_16", 50.0),
        # format 1.3: the jxl payload, two blocks as above
        "stereo-44k-jxl-70000": (stereo, 44100, "PCM_16", 50.0),
        # format 2.0: the compact header and framing, two blocks as above
        "wlc2-stereo-44k-70000": (stereo, 44100, "PCM_16", 50.0),
        # format 2.2: the ctx payload, two blocks as above
        "wlc22-stereo-44k-70000": (stereo, 44100, "PCM_16", 50.0),
    }


PAYLOADS = {"stereo-44k-jxl-70000": "jxl", "wlc22-stereo-44k-70000": "ctx"}  # the cases not coded with webp
WLC2 = {"wlc2-stereo-44k-70000", "wlc22-stereo-44k-70000"}  # the cases written as format 2.x (the others: 1.x)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = json.loads((OUT / "index.json").read_text()) if (OUT / "index.json").exists() else {}
    for name, (samples, rate, subtype, quality) in cases().items():
        if name in index:
            continue  # written once, kept forever
        src = OUT / f"{name}.src.wav"
        sf.write(src, samples, rate, subtype=subtype)
        buffer = io.BytesIO()
        with wlc_version(2 if name in WLC2 else 1):
            report = compress_audio(src, buffer, quality=quality, payload=PAYLOADS.get(name, "webp"))
        (OUT / f"{name}.wlc").write_bytes(buffer.getvalue())
        buffer.seek(0)
        decompress_audio(WlcReader(buffer), OUT / f"{name}.out.wav", overwrite=True)
        index[name] = {"model": report.model, "quality": quality, "payload": PAYLOADS.get(name, "webp"), "bytes": len(buffer.getvalue()), **({"wlc_version": 2} if name in WLC2 else {})}
        print(f"{name}: {len(buffer.getvalue())} bytes, {report.model} step {report.step}")
    (OUT / "index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
