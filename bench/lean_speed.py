"""In-process speed of the lean (numpy) runtime against the torch network, beside WebP, FLAC and JPEG 2000.

For every shipped image model, encode (transform, projection, companding, quantisation, tile by
tile as the image codec runs it: ``codecs.image_tiles.image_indices``) and decode (CNN decoder
and inverse transform, tile by tile, to 8-bit samples: ``synthesize_samples``) MP/s on a
640x400 photo and a 3.5 MP one (``sunset_by_Aitzol_Berasategi.png`` of the held-out set upscaled
1.6x with Lanczos), with 1 and 2 threads, for ``lean`` and ``torch``; Pillow's WebP (lossy, q 75,
method 4, libwebp's default) on the same pictures in the same run. Audio and volume: the models'
encode and decode in mega-samples (voxels) per second against FLAC (soundfile) and lossless
JPEG 2000 (imagecodecs), 2 threads. Best of ``--repeats`` runs after a warm-up.

``--onnx PATH`` (a folder holding ``onnxruntime``, e.g. ``pip install --target PATH onnxruntime``)
adds the decoder CNN exported with ``torch.onnx`` run by ONNX Runtime (plus the lean inverse
transform), for the image models.

    PYTHONPATH=. python bench/lean_speed.py [--repeats 3] [--onnx /tmp/ortenv] > bench/results/lean_speed.txt
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from walloc_cli.codecs.image_tiles import image_indices, synthesize_samples
from walloc_cli.files.images import image_from_array
from walloc_cli.model.runtime import set_threads
from walloc_cli.model.zoo import available_models, load_model

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = Path("/work/data/photos/test")


def best(call: Callable[[], Any], repeats: int) -> float:
    """Least wall time of ``repeats`` calls after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def pictures() -> dict[str, np.ndarray]:
    """``(H, W, 3)`` uint8: a 640x400 crop of rocket.png and the upscaled 3.5 MP sunset."""
    small = np.asarray(Image.open(PHOTOS / "rocket.png").convert("RGB"))[:400, :640]
    sunset = Image.open(PHOTOS / "sunset_by_Aitzol_Berasategi.png").convert("RGB")
    large = np.asarray(sunset.resize((round(sunset.width * 1.6), round(sunset.height * 1.6)), Image.LANCZOS))
    return {"640x400": np.ascontiguousarray(small), f"{large.shape[1]}x{large.shape[0]}": large}


def threads(count: int) -> None:
    """Both runtimes on ``count`` threads."""
    import torch

    torch.set_num_threads(count)
    set_threads(count)


def webp_rates(array: np.ndarray, repeats: int) -> tuple[float, float]:
    """Pillow WebP lossy q75 method 4: (encode MP/s, decode MP/s)."""
    picture = Image.fromarray(array)
    data = io.BytesIO()
    picture.save(data, "WEBP", quality=75, method=4)
    mp = array.shape[0] * array.shape[1] / 1e6

    def encode() -> None:
        picture.save(io.BytesIO(), "WEBP", quality=75, method=4)

    def decode() -> None:
        Image.open(io.BytesIO(data.getvalue())).load()

    return mp / best(encode, repeats), mp / best(decode, repeats)


def onnx_decoder(name: str, folder: Path, workdir: Path) -> Any:
    """A ``decode`` like the runtimes' whose CNN runs in ONNX Runtime (the inverse transform
    stays lean): exported once per model with ``torch.onnx`` (TorchScript exporter)."""
    import torch

    sys.path.append(str(folder))  # after site-packages: its own numpy copy must not win
    import onnxruntime as ort

    from walloc_cli.model.lean_wpt import iwpt
    from walloc_cli.model.zoo import load_network

    network, card = load_network(name)
    cfg = card.config
    path = workdir / f"{name}.decoder.onnx"
    if not path.exists():
        example = torch.zeros(1, cfg.decoder_inputs, 16, 16)
        torch.onnx.export(network.decoder, (example,), str(path), input_names=["y"], output_names=["c"],
                          dynamic_axes={"y": {2: "h", 3: "w"}, "c": {2: "h", 3: "w"}}, dynamo=False)
    session_threads = {"value": 2}
    sessions: dict[int, Any] = {}

    def session() -> Any:
        count = session_threads["value"]
        if count not in sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = count
            options.inter_op_num_threads = 1
            sessions[count] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return sessions[count]

    class OnnxDecoder:
        """Only what ``synthesize_samples`` calls: ``cfg`` and ``decode``."""

        def __init__(self) -> None:
            self.cfg = cfg
            self.threads = session_threads

        def decode(self, q: np.ndarray, shape: tuple[int, ...], step: float = 1.0, condition: float | None = None) -> np.ndarray:
            y = q.astype(np.float32) * np.float32(step) / np.float32(network.lmax)
            if cfg.step_input:
                plane = np.full((y.shape[0], 1, *y.shape[2:]), np.log2(np.float32(step if condition is None else condition)), np.float32)
                y = np.concatenate([y, plane], axis=1)
            coeffs = session().run(None, {"y": np.ascontiguousarray(y)})[0]  # (N, wavelet, h, w)
            out = [iwpt(np.ascontiguousarray(np.moveaxis(c, 0, -1)), cfg.channels, cfg.levels, cfg.boundary) for c in coeffs]
            return np.stack(out)[(slice(None), slice(None), *(slice(0, n) for n in shape))]

    return OnnxDecoder()


def torch_today(name: str) -> Any:
    """The torch runtime as the codecs ran it before the lean one: the network's own float32
    encoder (``WallocCodec.companded``), the same decoder."""
    import torch

    from walloc_cli.model.runtime import TorchRuntime
    from walloc_cli.model.zoo import load_network

    class Float32Torch(TorchRuntime):
        def companded(self, x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return self.network.companded(torch.from_numpy(np.asarray(x, np.float32))).numpy()

    return Float32Torch(load_network(name)[0])


def runtime(name: str, kind: str) -> Any:
    """``lean``, ``torch`` (float64 encoder, the reference) or ``torch32`` (today's float32 path)."""
    return torch_today(name) if kind == "torch32" else load_model(name, kind)[0]


def image_table(repeats: int, onnx: Path | None) -> list[str]:
    """The image rows: per model, picture and thread count, MP/s of each runtime."""
    import tempfile

    photos = pictures()
    rows = ["| model | picture | threads | encode lean | encode torch | decode lean | decode torch |" + (" decode onnxruntime |" if onnx else ""),
            "|---|---|---|---|---|---|---|" + ("---|" if onnx else "")]
    workdir = Path(tempfile.mkdtemp(prefix="lean-speed-"))
    webp: list[str] = []
    for count in (2, 1):
        threads(count)
        for label, array in photos.items():
            enc, dec = webp_rates(array, repeats)
            webp.append(f"| WebP q75 m4 (Pillow) | {label} | {count} (libwebp: 1) | {enc:.2f} | | {dec:.2f} | |" + (" |" if onnx else ""))
    for card in available_models():
        if card.modality != "image":
            continue
        ort_decoder = onnx_decoder(card.name, onnx, workdir) if onnx else None
        for count in (2, 1):
            threads(count)
            for label, array in photos.items():
                image = image_from_array(array)
                mp = image.height * image.width / 1e6
                cells = []
                q = None
                for kind in ("lean", "torch32"):
                    codec = runtime(card.name, kind)
                    cells.append(mp / best(lambda: image_indices(codec, image, 1.0, {}, None), repeats))
                    q = image_indices(codec, image, 1.0, {}, None)
                for kind in ("lean", "torch32"):
                    codec = runtime(card.name, kind)
                    cells.append(mp / best(lambda: synthesize_samples(codec, q, image.height, image.width, 3, 8, 1.0), repeats))
                line = f"| {card.name} | {label} | {count} | " + " | ".join(f"{v:.2f}" for v in cells) + " |"
                if ort_decoder is not None:
                    ort_decoder.threads["value"] = count
                    line += f" {mp / best(lambda: synthesize_samples(ort_decoder, q, image.height, image.width, 3, 8, 1.0), repeats):.2f} |"
                rows.append(line)
                print(line, file=sys.stderr, flush=True)
    return rows + webp


def signal_table(repeats: int) -> list[str]:
    """Audio and volume rows (2 threads): mega-samples (voxels) per second."""
    import imagecodecs
    import soundfile as sf

    threads(2)
    rows = ["| model | signal | encode lean | encode torch | decode lean | decode torch |", "|---|---|---|---|---|---|"]
    wav, rate = sf.read(ROOT / "formats" / "reference" / "audio" / "stereo-44k-70000.src.wav", dtype="float32", always_2d=True)
    music = np.tile(wav[:, 0], 20)[: 1 << 20]  # 23.8 s mono at 44.1 kHz
    speech, _ = sf.read(ROOT / "formats" / "reference" / "audio" / "mono-8k-4001.src.wav", dtype="float32", always_2d=True)
    speech8k = np.resize(speech[:, 0], 1 << 18)  # 32.8 s at 8 kHz, the clip repeated
    ct = np.load(ROOT / "formats" / "reference" / "volume" / "ct-int16-20x136x40.src.npy")
    volume = np.tile(ct, (3, 1, 4))  # 60 x 136 x 160
    ms = np.load(ROOT / "formats" / "reference" / "volume" / "ms-uint16-8x48x56.src.npy")
    cube = np.tile(ms, (4, 3, 3))  # 32 x 144 x 168
    for card in available_models():
        if card.modality == "audio":
            signal = speech8k if "8k" in card.name else music
            # blocks of 2**16 frames as the audio codec codes them (context left out)
            x = (signal / (2 * np.abs(signal).max())).reshape(-1, 1, 1 << 16)
            label = f"{signal.size / (8000 if '8k' in card.name else rate):.1f} s mono"
        elif card.modality == "volume":
            source = volume if card.name.startswith("ct") else cube
            x = ((source - source.mean()) / (6 * source.std()))[None, None].astype(np.float32)
            label = "x".join(map(str, source.shape)) + " voxels"
        else:
            continue
        cells = []
        units = x.size / 1e6
        results = {}
        for kind in ("lean", "torch32"):
            codec = runtime(card.name, kind)
            cells.append(units / best(lambda: codec.encode(x.astype(np.float32), 1.0), repeats))
            results[kind] = codec
        q = results["lean"].encode(x.astype(np.float32), 1.0)
        for kind in ("lean", "torch32"):
            cells.append(units / best(lambda: results[kind].decode(q, x.shape[2:], 1.0), repeats))
        rows.append(f"| {card.name} | {label} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
        print(rows[-1], file=sys.stderr, flush=True)
    pcm = (music * 32767).astype(np.int16)

    def flac_encode() -> bytes:
        out = io.BytesIO()
        sf.write(out, pcm, rate, format="FLAC")
        return out.getvalue()

    flac = flac_encode()
    rows.append(f"| FLAC (soundfile) | {pcm.size / rate:.1f} s mono | {pcm.size / 1e6 / best(flac_encode, repeats):.2f} | | "
                f"{pcm.size / 1e6 / best(lambda: sf.read(io.BytesIO(flac), dtype='int16'), repeats):.2f} | |")
    slices = np.ascontiguousarray(volume)
    j2k = [imagecodecs.jpeg2k_encode(s, level=0) for s in slices]
    rows.append(f"| JPEG 2000 lossless (imagecodecs, per slice) | {'x'.join(map(str, volume.shape))} voxels | "
                f"{volume.size / 1e6 / best(lambda: [imagecodecs.jpeg2k_encode(s, level=0) for s in slices], repeats):.2f} | | "
                f"{volume.size / 1e6 / best(lambda: [imagecodecs.jpeg2k_decode(b) for b in j2k], repeats):.2f} | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--onnx", type=Path, default=None, help="folder holding onnxruntime (pip install --target)")
    parser.add_argument("--skip-signals", action="store_true")
    parser.add_argument("--skip-images", action="store_true")
    args = parser.parse_args()
    print(f"# lean vs torch, in-process; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start\n")
    if not args.skip_images:
        print("## Images: MP/s (encode: tiles to indices; decode: indices to 8-bit samples)\n")
        print("\n".join(image_table(args.repeats, args.onnx)))
    if not args.skip_signals:
        print("\n## Audio and volumes (2 threads): mega-samples or mega-voxels per second\n")
        print("\n".join(signal_table(args.repeats)))
    print(f"\nload {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
