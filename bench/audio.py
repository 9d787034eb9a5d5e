"""Audio: walloc's rate and SNR at several -q beside Opus at the same bitrates, and FLAC's
lossless ratio, measured in one run on held-out audio.

For each folder (default: the test splits of ``walloc data``'s music and speech sets, never
trained on):

* walloc: ``compress_audio`` at each quality; kbit/s = whole .wlc file bits / duration;
  SNR = signal energy / error energy and PSNR (peak = PCM full scale) over every sample of every
  channel as decoded and quantised to the source's 16-bit PCM; encode and decode speed as
  multiples of real time (decode = the full decompress to a WAV file);
* Opus: ``opusenc --bitrate B`` at walloc's mean bitrate for that quality (rounded), decoded with
  ``opusdec --rate <source rate>``; the decoder's pre-skip is removed by opusdec, so samples line
  up; SNR/PSNR the same way. Opus is a perceptual codec: it does not aim at waveform SNR, so this
  compares what each keeps of the waveform, not how either sounds;
* FLAC (libsndfile, level default): lossless compression ratio against raw 16-bit PCM.

    python bench/audio.py [FOLDER[:GLOB] ...] [--qualities 25 50 75 100] [--model NAME]

``--model`` codes every file with that model (its own step range mapped to -q) instead of the
model the quality ladder picks for the file's rate (speech models at 16 kHz and below).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from walloc_cli.codecs.audio import compress_audio, decompress_audio
from walloc_cli.format.container import WlcReader


def snr_psnr(reference: np.ndarray, decoded: np.ndarray) -> tuple[float, float]:
    n = min(len(reference), len(decoded))
    error = np.sum((reference[:n] - decoded[:n]) ** 2)
    return 10 * math.log10(np.sum(reference[:n] ** 2) / error), 10 * math.log10(reference[:n].size / error)


def opus_round_trip(path: Path, kbps: int, folder: Path) -> tuple[int, np.ndarray]:
    info = sf.info(path)
    wav = folder / "in.wav"
    data, rate = sf.read(path, dtype="int16")
    sf.write(wav, data, rate, subtype="PCM_16")
    encoded, decoded = folder / "x.opus", folder / "y.wav"
    subprocess.run(["opusenc", "--quiet", "--bitrate", str(kbps), str(wav), str(encoded)], check=True)
    subprocess.run(["opusdec", "--quiet", "--rate", str(info.samplerate), str(encoded), str(decoded)], check=True)
    out, _ = sf.read(decoded, dtype="int16", always_2d=True)
    return encoded.stat().st_size, out.astype(np.float64) / 32768


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", default=["data/music/test", "data/speech/test:*.8k.flac", "data/speech/test:*.16k.flac"], help="FOLDER or FOLDER:GLOB")
    parser.add_argument("--qualities", nargs="+", type=float, default=[25, 50, 75, 100])
    parser.add_argument("--json", type=Path, default=Path("bench/results/audio.json"))
    parser.add_argument("--model", default=None, help="model name or card for every file (default: the ladder's choice per rate)")
    args = parser.parse_args()
    have_opus = shutil.which("opusenc") and shutil.which("opusdec")
    results = {}
    for spec in args.folders:
        folder, _, pattern = spec.partition(":")
        files = sorted(p for p in Path(folder).glob(pattern or "*") if p.suffix in {".flac", ".wav"})
        seconds = sum(sf.info(p).duration for p in files)
        raw = sum(sf.info(p).frames * sf.info(p).channels * 2 for p in files)
        flac_bytes = sum(p.stat().st_size for p in files) if all(p.suffix == ".flac" for p in files) else 0
        print(f"{spec}: {len(files)} files, {seconds / 60:.1f} min; FLAC lossless ratio {raw / flac_bytes:.2f}:1" if flac_bytes else f"{spec}: {len(files)} files")
        rows = []
        for quality in args.qualities:
            total_bytes = 0
            models: set[str] = set()
            sig = err = count = 0.0
            enc_time = dec_time = 0.0
            opus_bytes = 0
            osig = oerr = 0.0
            for path in files:
                reference, _ = sf.read(path, always_2d=True)
                buffer = io.BytesIO()
                started = time.perf_counter()
                report = compress_audio(path, buffer, quality=quality, model=args.model, measure=False)
                models.add(report.model)
                enc_time += time.perf_counter() - started
                total_bytes += buffer.tell()
                buffer.seek(0)
                with tempfile.TemporaryDirectory() as tmp:
                    started = time.perf_counter()
                    decompress_audio(WlcReader(buffer), Path(tmp) / "out.wav")
                    dec_time += time.perf_counter() - started
                    decoded, _ = sf.read(Path(tmp) / "out.wav", always_2d=True)
                sig += float(np.sum(reference**2))
                err += float(np.sum((reference - decoded) ** 2))
                count += reference.size
            kbps = total_bytes * 8 / seconds / 1000
            row = {"quality": quality, "model": ",".join(sorted(models)), "kbps": kbps, "snr": 10 * math.log10(sig / err), "psnr": 10 * math.log10(count / err), "encode_x_realtime": seconds / enc_time, "decode_x_realtime": seconds / dec_time}
            if have_opus:
                target = max(6, int(round(kbps)))
                with tempfile.TemporaryDirectory() as tmp:
                    for path in files:
                        reference, _ = sf.read(path, always_2d=True)
                        size, decoded = opus_round_trip(path, target, Path(tmp))
                        n = min(len(reference), len(decoded))
                        opus_bytes += size
                        osig += float(np.sum(reference[:n] ** 2))
                        oerr += float(np.sum((reference[:n] - decoded[:n]) ** 2))
                row.update({"opus_kbps": opus_bytes * 8 / seconds / 1000, "opus_snr": 10 * math.log10(osig / oerr), "opus_psnr": 10 * math.log10(count / oerr)})
            rows.append(row)
            print(f"  q {quality:>5g} ({row['model']}): walloc {kbps:6.1f} kbit/s  SNR {row['snr']:6.2f} dB  PSNR {row['psnr']:6.2f} dB  enc {row['encode_x_realtime']:5.1f}x  dec {row['decode_x_realtime']:5.1f}x real time"
                  + (f"  | Opus {row['opus_kbps']:6.1f} kbit/s  SNR {row['opus_snr']:6.2f} dB  PSNR {row['opus_psnr']:6.2f} dB" if have_opus else "  | opusenc not installed"))
        results[spec] = {"files": len(files), "minutes": seconds / 60, "flac_ratio": raw / flac_bytes if flac_bytes else None, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
