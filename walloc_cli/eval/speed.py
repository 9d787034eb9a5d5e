"""The library behind ``walloc bench``: encode/decode speed and peak memory against input size,
walloc beside the classic codec of each modality, in one run.

Inputs are made from real data, never noise: images by mirror-tiling (or cropping) a photo to
each size in megapixels at 4:3; audio by concatenating real recordings (files of the first file's
sample rate and channel count) to each duration; volumes by mirror-tiling a ``.npy`` volume to
each size in megavoxels.

Every measurement runs in its own fresh Python process (``python -m walloc_cli.eval.speed --worker``),
so peak memory is that process's ``ru_maxrss`` (``getrusage``; tracemalloc does not see torch's
allocations) and no measurement inherits another's caches. The worker loads its input and warms
the codec up on a small piece (model loading is not counted), then times one call.
``peak_mib`` is the process's peak resident memory, ``extra_mib`` what the call added above
what the process held before it (the interpreter, torch, the input). Opus runs as a
command-line tool forked from the worker; its memory is not measured (None).

What is timed: images and volumes, the codec's in-memory encode / decode
(:mod:`walloc_cli.eval.codecs`); audio, file to file: walloc ``compress_audio`` /
``decompress_audio`` (streamed in blocks), FLAC through libsndfile in blocks of 64 Ki frames,
Opus with ``opusenc`` / ``opusdec``. Comparison codecs run at their usual settings: WebP quality
80 method 4 (cwebp's defaults), FLAC level 5, Opus 64 kbit/s; walloc at ``-q 75``.

Whole-process figures (``runs`` > 0, CPU): what a shell loop pays per file. The wall time of
``python -m walloc_cli compress IN -o OUT`` and ``decompress`` in a fresh process, start-up
included (the interpreter, imports, the model), the median of ``runs`` runs after one untimed
run (it warms the page cache and writes the file the decompress runs read); no memory figures
(a child's ``ru_maxrss`` starts from the bench process's, copied when it forks). For images, ``cwebp`` / ``dwebp`` (their defaults: quality
75, method 4; PNG in and out) run the same way beside them when installed (a note says when they
are not), and :func:`process_ratios` gives walloc's time over theirs. Those rows have the
operations ``compress (process)`` / ``decompress (process)``.

With ``device="cuda"`` walloc's tensor stages (transform, encoder and quantiser; decoder and
inverse transform) run on the GPU and are timed alone (``core`` rows, synchronised); the
lossless WebP payload stage stays on the CPU and is not in those rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from walloc_cli.errors import InputError
from walloc_cli.eval.codecs import CODECS, Sample, WebpImage, run_tool
from walloc_cli.eval.run import Note, load_sample

DEFAULT_SIZES = {"image": (0.25, 1.0, 4.0, 16.0), "audio": (10.0, 60.0, 600.0), "volume": (1.0, 4.0, 16.0)}
SIZE_UNITS = {"image": "MP", "audio": "s", "volume": "Mvoxel"}
THROUGHPUT_UNITS = {"image": "MP/s", "audio": "Msample/s", "volume": "Mvoxel/s"}
COMPARED = {"image": ("walloc", "webp"), "audio": ("walloc", "flac", "opus"), "volume": ("walloc", "jpeg2000", "sperr")}
SETTINGS = {("image", "walloc"): 75.0, ("image", "webp"): 80.0, ("audio", "walloc"): 75.0, ("audio", "flac"): 5.0, ("audio", "opus"): 64.0, ("volume", "walloc"): 75.0, ("volume", "jpeg2000"): 70.0, ("volume", "sperr"): 1.0}
MAX_SIZE = {"image": 64.0, "audio": 3600.0, "volume": 256.0}  # what a bench input may be, in its unit
PROCESS_OPERATIONS = ("compress (process)", "decompress (process)")
# The classic codec's command-line tools for the whole-process rows: (codec, compress tool, decompress tool).
PROCESS_TOOLS = {"image": ("webp", "cwebp", "dwebp")}
DECODED_SUFFIX = {"image": ".png", "audio": ".wav", "volume": ".npy"}


@dataclasses.dataclass
class SpeedRow:
    """One timed call: ``size`` in ``size_unit``, ``throughput`` in ``throughput_unit``."""

    modality: str
    codec: str
    operation: str  # encode | decode | encode core | decode core
    size: float
    size_unit: str
    seconds: float
    throughput: float
    throughput_unit: str
    realtime: float | None  # audio: seconds of audio per second of work
    peak_mib: float | None  # None: not measured (a command-line tool did the work)
    extra_mib: float | None
    coded_bytes: int
    device: str
    threads: int
    runs: int = 1  # whole-process rows: the median of this many runs



# --- building inputs from real data -----------------------------------------------------------
def _mirror_tile(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` mirror-tiled (no seams) or cropped to ``shape`` on its leading axes."""
    pads = [(0, max(0, target - size)) for target, size in zip(shape, array.shape)] + [(0, 0)] * (array.ndim - len(shape))
    while any(after > 0 for _, after in pads):
        step = [(0, min(after, size)) for (_, after), size in zip(pads, array.shape)]
        array = np.pad(array, step, mode="symmetric")
        pads = [(0, max(0, target - size)) for target, size in zip(shape, array.shape)] + [(0, 0)] * (array.ndim - len(shape))
    return np.ascontiguousarray(array[tuple(slice(0, s) for s in shape)])


def default_source(modality: str) -> Path:
    """The real data a bench is built from when no ``--source`` is given."""
    root = Path.cwd()
    candidates = {
        "image": [root / "data/photos/test", root / "samples/photo.png"],
        "audio": [root / "data/music/test", root / "data/music/train", root / "data/speech/test"],
        "volume": [root / "data/volumes/test", root / "data/volumes"],
    }[modality]
    for path in candidates:
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            return path
    hint = {"image": "walloc data photos", "audio": "walloc data music", "volume": "a .npy volume"}[modality]
    raise InputError(f"no {modality} data to build the bench inputs from: give --source (e.g. {hint})")


def _source_files(source: Path, suffixes: tuple[str, ...]) -> list[Path]:
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in suffixes) if source.is_dir() else [source]
    if not files:
        raise InputError(f"{source}: holds no {'/'.join(suffixes)} files")
    return files


def make_image(source: Path, megapixels: float) -> np.ndarray:
    """``(H, W, 3)`` uint8 of about ``megapixels`` MP at 4:3 from the largest photo in ``source``."""
    photos = _source_files(source, (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"))
    largest = max(photos, key=lambda p: p.stat().st_size)
    pixels = load_sample(largest).data
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    width = max(16, int(round((megapixels * 1e6 * 4 / 3) ** 0.5)))
    height = max(16, int(round(megapixels * 1e6 / width)))
    return _mirror_tile(pixels, (height, width))


def make_audio(source: Path, seconds: float, out: Path) -> Path:
    """A 16-bit WAV of ``seconds`` of real audio at ``out``: the files of ``source`` with the first
    one's rate and channels, concatenated (repeated when they are too short), written in blocks."""
    import soundfile as sf

    files = _source_files(source, (".flac", ".wav", ".ogg", ".aiff", ".aif"))
    first = sf.info(files[0])
    usable = [p for p in files if (sf.info(p).samplerate, sf.info(p).channels) == (first.samplerate, first.channels)]
    needed = int(round(seconds * first.samplerate))
    written = 0
    with sf.SoundFile(out, "w", first.samplerate, first.channels, "PCM_16", format="WAV") as sink:
        while written < needed:
            for path in usable:
                for block in sf.blocks(path, blocksize=1 << 16, dtype="int16", always_2d=True):
                    block = block[: needed - written]
                    sink.write(block)
                    written += len(block)
                    if written >= needed:
                        break
                if written >= needed:
                    break
    return out


def make_volume(source: Path, megavoxels: float) -> np.ndarray:
    """A cube-ish volume of about ``megavoxels`` Mvoxel mirror-tiled from the first ``.npy``."""
    volume = load_sample(_source_files(source, (".npy",))[0]).data
    side = max(8, int(round((megavoxels * 1e6) ** (1 / 3))))
    return _mirror_tile(volume, (side, side, side))


# --- one measurement in a fresh process -------------------------------------------------------
def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _sample(modality: str, path: Path) -> Any:
    if modality == "audio":
        import soundfile as sf

        info = sf.info(path)
        # the audio coders read the file themselves: no samples in memory
        return Sample(path, "audio", np.zeros((0, info.channels)), 1.0, info.duration, samplerate=info.samplerate, subtype=info.subtype)
    data = np.load(path, allow_pickle=False)
    return Sample(path, modality, data, 255.0, float(data.size if modality == "volume" else data.shape[0] * data.shape[1]))


def _audio_operation(codec: str, operation: str, source: Path, coded: Path, quality: float) -> Callable[[], None]:
    """A file-to-file audio call (see the module docstring)."""
    import soundfile as sf

    decoded = coded.with_suffix(".decoded.wav")
    if codec == "walloc":
        from walloc_cli.codecs.audio import compress_audio, decompress_audio
        from walloc_cli.format.container import WlcReader

        if operation == "encode":
            def run() -> None:
                with open(coded, "wb") as sink:
                    compress_audio(source, sink, quality=quality, measure=False)
        else:
            def run() -> None:
                with open(coded, "rb") as stream:
                    decompress_audio(WlcReader(stream), decoded, overwrite=True)
        return run
    if codec == "flac":
        info = sf.info(source)
        if operation == "encode":
            def run() -> None:
                with sf.SoundFile(coded, "w", info.samplerate, info.channels, "PCM_16", format="FLAC", compression_level=quality / 8) as sink:
                    for block in sf.blocks(source, blocksize=1 << 16, dtype="int16", always_2d=True):
                        sink.write(block)
        else:
            def run() -> None:
                with sf.SoundFile(decoded, "w", info.samplerate, info.channels, "PCM_16", format="WAV") as sink:
                    for block in sf.blocks(coded, blocksize=1 << 16, dtype="int16", always_2d=True):
                        sink.write(block)
        return run
    if codec == "opus":
        rate = sf.info(source).samplerate
        if operation == "encode":
            return lambda: run_tool(["opusenc", "--quiet", "--bitrate", f"{quality:g}", str(source), str(coded)])
        return lambda: run_tool(["opusdec", "--quiet", "--rate", str(rate), str(coded), str(decoded)])
    raise InputError(f"no audio bench for codec {codec!r}")


def _core_operation(spec: dict[str, Any], sample: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    """walloc's tensor stages on ``spec['device']`` (image): (warm-up, timed call)."""
    import copy

    import torch

    from walloc_cli.model.quality import setting_for_quality
    from walloc_cli.model.zoo import load_network

    device = torch.device(spec["device"])
    setting = setting_for_quality(spec["quality"], "rgb")
    codec = copy.deepcopy(load_network(setting.model)[0]).to(device)  # the cached CPU model stays as it is
    x = torch.from_numpy(np.moveaxis(sample.data, -1, 0).astype(np.float32) / 255.0)[None].to(device) - 0.5
    small = x[..., :64, :64]
    q = codec.encode(x, setting.step)
    q_small = codec.encode(small, setting.step)

    def call(encode: bool, tensor: torch.Tensor, latent: torch.Tensor) -> None:
        with torch.inference_mode():
            if encode:
                codec.encode(tensor, setting.step)
            else:
                codec.decode(latent, tuple(tensor.shape[-2:]), setting.step)
        torch.cuda.synchronize(device) if device.type == "cuda" else None

    encode = spec["operation"] == "encode core"
    return (lambda: call(encode, small, q_small)), (lambda: call(encode, x, q))


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one timed call described by ``spec`` (made by :func:`measure_in_process`); returns
    seconds, coded bytes and memory figures. The threads are ``OMP_NUM_THREADS`` (set by
    :func:`measure_in_process`), and torch's too when the codec loaded it (torch is an optional
    extra: it is not imported here for that)."""
    modality, name, operation = spec["modality"], spec["codec"], spec["operation"]
    source, coded = Path(spec["input"]), Path(spec["coded"])
    quality = float(spec["quality"])
    if operation.endswith("core"):
        warm, timed = _core_operation(spec, _sample(modality, source))
        warm()
        if spec["device"] == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
    elif modality == "audio":
        timed = _audio_operation(name, operation, source, coded, quality)
    else:
        class CwebpDefaults(WebpImage):
            options = {"method": 4}  # cwebp's default effort: what people run, not eval's method 6

        codec = CwebpDefaults() if (modality, name) == ("image", "webp") else CODECS[(modality, name)]()
        sample = _sample(modality, source)
        piece = dataclasses.replace(sample, data=np.ascontiguousarray(sample.data[tuple(slice(0, 32) for _ in range(min(3, sample.data.ndim)))]))
        codec.decode(codec.encode(piece, quality), piece)  # warm-up: model loading is not timed
        if operation == "encode":
            def timed() -> None:
                coded.write_bytes(codec.encode(sample, quality))
        else:
            data = coded.read_bytes()

            def timed() -> None:
                codec.decode(data, sample)
    torch = sys.modules.get("torch")
    if spec["threads"] and torch is not None:  # loaded by the codec's warm-up
        torch.set_num_threads(spec["threads"])
    before = _max_rss_mib()
    started = time.perf_counter()
    timed()
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "peak_mib": _max_rss_mib(), "before_mib": before, "coded_bytes": coded.stat().st_size if coded.exists() else 0}
    if (modality, name) == ("audio", "opus"):
        # the work ran in opusenc/opusdec, forked from this process: their ru_maxrss counts the
        # pages they shared with it before exec, so there is no honest figure to give
        result.update(peak_mib=None, before_mib=None)
    if operation.endswith("core") and spec["device"] == "cuda":
        assert torch is not None
        result["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def measure_in_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter; :class:`InputError` with its last error line."""
    env = dict(os.environ)
    if spec["threads"]:
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    result = subprocess.run([sys.executable, "-m", "walloc_cli.eval.speed", "--worker", json.dumps(spec)], check=False, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise InputError(f"{spec['codec']} {spec['operation']} failed: {lines[-1] if lines else result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- whole processes -------------------------------------------------------------------------
def _run_once(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run of ``command``; :class:`InputError` with its last error line when
    it fails."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty child cannot block on it
        started = time.perf_counter()
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            log.seek(0)
            lines = log.read().decode(errors="replace").strip().splitlines()
            raise InputError(f"{Path(command[0]).name} {' '.join(command[1:4])} failed: {lines[-1] if lines else done.returncode}")
    return seconds


def time_process(command: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """The median wall seconds of ``runs`` runs of ``command`` after one untimed run (page cache,
    and the output later runs read)."""
    env = dict(os.environ) if env is None else env
    _run_once(command, env)
    return statistics.median(_run_once(command, env) for _ in range(runs))


def _process_commands(modality: str, codec: str, source: Path, coded: Path, decoded: Path) -> tuple[list[str], list[str]]:
    """The compress and decompress command lines of ``codec``: walloc as ``python -m walloc_cli``
    (this interpreter, defaults but ``-f``), the classic codec as its tools with their defaults."""
    if codec == "walloc":
        walloc = [sys.executable, "-m", "walloc_cli"]
        return [*walloc, "compress", str(source), "-o", str(coded), "-f"], [*walloc, "decompress", str(coded), "-o", str(decoded), "-f"]
    _, encoder, decoder = PROCESS_TOOLS[modality]
    return [encoder, "-quiet", str(source), "-o", str(coded)], [decoder, "-quiet", str(coded), "-o", str(decoded)]


def process_rows(modality: str, source: Path, size: float, units: float, seconds_of_audio: float | None, folder: Path, runs: int, threads: int, progress: Note | None = None) -> tuple[list[SpeedRow], list[str]]:
    """The whole-process rows of one input file ``source`` (PNG, WAV or ``.npy``; ``units`` of
    it in :data:`THROUGHPUT_UNITS`): walloc, then the classic codec's tools where they are
    installed (a note where not); notes for what failed."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    codecs = ["walloc"]
    notes: list[str] = []
    if modality in PROCESS_TOOLS:
        name, *tools = PROCESS_TOOLS[modality]
        missing = [tool for tool in tools if shutil.which(tool) is None]
        if missing:
            notes.append(f"{name} whole-process rows skipped: {' and '.join(missing)} not installed (Debian: apt-get install {name})")
        else:
            codecs.append(name)
    rows = []
    for codec in codecs:
        coded = folder / f"process-{codec}-{size:g}.{'wlc' if codec == 'walloc' else codec}"
        decoded = folder / f"process-{codec}-{size:g}.decoded{DECODED_SUFFIX[modality]}"
        for operation, command in zip(PROCESS_OPERATIONS, _process_commands(modality, codec, source, coded, decoded)):
            if progress:
                progress(f"{codec} {operation} {size:g} {SIZE_UNITS[modality]}, {runs} run{'s' if runs != 1 else ''}")
            try:
                seconds = time_process(command, runs, env)
            except InputError as error:
                notes.append(str(error))
                break
            rows.append(SpeedRow(
                modality, codec, operation, size, SIZE_UNITS[modality], seconds, units / seconds, THROUGHPUT_UNITS[modality],
                # No memory figures: a child's ru_maxrss starts from this (large) process's, copied at fork.
                seconds_of_audio / seconds if seconds_of_audio else None, None, None, coded.stat().st_size, "cpu", threads, runs,
            ))
    return rows, notes


def process_ratios(rows: list[SpeedRow]) -> list[dict[str, Any]]:
    """walloc's whole-process time over the classic codec's, per size and operation where both
    ran: ``{"size", "operation", "walloc_s", "codec", "codec_s", "ratio"}``."""
    found = {(r.size, r.operation, r.codec): r.seconds for r in rows if r.operation in PROCESS_OPERATIONS}
    ratios = []
    for (size, operation, codec), seconds in found.items():
        if codec != "walloc" and (size, operation, "walloc") in found:
            walloc = found[(size, operation, "walloc")]
            ratios.append({"size": size, "operation": operation, "walloc_s": walloc, "codec": codec, "codec_s": seconds, "ratio": walloc / seconds})
    return ratios


# --- the bench --------------------------------------------------------------------------------
def run_bench(modality: str = "image", sizes: list[float] | None = None, threads: int = 0, device: str = "cpu", source: Path | None = None, progress: Note | None = None, runs: int = 5) -> tuple[list[SpeedRow], list[str]]:
    """Time walloc and the comparison codecs of ``modality`` at each size; rows and notes (codecs
    skipped because they cannot run here, and why). With ``runs`` > 0 (CPU only) each size also
    gets the whole-process rows (:func:`process_rows`, the median of ``runs`` runs)."""
    if modality not in DEFAULT_SIZES:
        raise InputError(f"unknown modality {modality!r} (choose image, audio or volume)")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r} (choose cpu or cuda)")
    if runs < 0:
        raise InputError(f"runs must be 0 or more, not {runs}")
    if device == "cuda":
        try:
            import torch
        except ImportError:
            raise InputError("--device cuda needs PyTorch: pip install 'walloc[train]'") from None
        if not torch.cuda.is_available():
            raise InputError("no CUDA device is available (torch.cuda.is_available() is false)")
        if modality != "image":
            raise InputError("--device cuda times walloc's tensor stages on images only")
    sizes = list(sizes or DEFAULT_SIZES[modality])
    for size in sizes:
        if not 0 < size <= MAX_SIZE[modality]:
            raise InputError(f"size {size:g} {SIZE_UNITS[modality]} is outside 0..{MAX_SIZE[modality]:g}")
    source = source or default_source(modality)
    notes: list[str] = []
    codecs = []
    for name in COMPARED[modality]:
        cls = CODECS.get((modality, name))
        reason = "no walloc volume codec is installed yet" if cls is None else cls.missing()
        if reason:
            notes.append(f"{name} skipped: {reason}")
        else:
            codecs.append(name)
    operations = ["encode core", "decode core"] if device == "cuda" else ["encode", "decode"]
    if runs and device == "cuda":
        notes.append("whole-process rows skipped: walloc runs on the CPU")
    rows: list[SpeedRow] = []
    with tempfile.TemporaryDirectory(prefix="walloc-bench-") as folder:
        for size in sizes:
            input_path = Path(folder) / f"input-{size:g}{'.wav' if modality == 'audio' else '.npy'}"
            if modality == "audio":
                make_audio(source, size, input_path)
                import soundfile as sf

                info = sf.info(input_path)
                units, seconds_of_audio = info.frames * info.channels / 1e6, info.duration
            else:
                array = make_image(source, size) if modality == "image" else make_volume(source, size)
                np.save(input_path, array)
                units = (array.shape[0] * array.shape[1] if modality == "image" else array.size) / 1e6
                seconds_of_audio = None
            for name in codecs:
                if device == "cuda" and name != "walloc":
                    continue  # the classic codecs have no GPU path
                coded = Path(folder) / f"coded-{name}-{size:g}.bin"
                for operation in operations:
                    if progress:
                        progress(f"{name} {operation} {size:g} {SIZE_UNITS[modality]}")
                    spec = {"modality": modality, "codec": name, "operation": operation, "input": str(input_path), "coded": str(coded), "quality": SETTINGS[(modality, name)], "threads": threads, "device": device}
                    try:
                        got = measure_in_process(spec)
                    except InputError as error:
                        notes.append(str(error))
                        break
                    seconds = got["seconds"]
                    rows.append(SpeedRow(
                        modality, name, operation, size, SIZE_UNITS[modality], seconds, units / seconds, THROUGHPUT_UNITS[modality],
                        seconds_of_audio / seconds if seconds_of_audio else None,
                        got.get("gpu_peak_mib", got["peak_mib"]),
                        got.get("gpu_peak_mib", None if got["peak_mib"] is None else got["peak_mib"] - got["before_mib"]),
                        got["coded_bytes"], device, threads,
                    ))
            if runs and device == "cpu":
                process_input = input_path
                if modality == "image":  # what people hand both tools: a PNG
                    from PIL import Image

                    process_input = input_path.with_suffix(".png")
                    Image.fromarray(array).save(process_input)
                more, problems = process_rows(modality, process_input, size, units, seconds_of_audio, Path(folder), runs, threads, progress)
                rows += more
                notes += [p for p in problems if p not in notes]
    return rows, notes


def write_rows(rows: list[SpeedRow], path: Path, overwrite: bool = False) -> None:
    """The bench rows as JSON (a list of objects)."""
    from walloc_cli.files.safe_io import atomic_output

    with atomic_output(path, overwrite) as handle:
        handle.write((json.dumps([dataclasses.asdict(r) for r in rows], indent=1) + "\n").encode())


def _main() -> None:
    parser = argparse.ArgumentParser(description="walloc bench worker (internal): one timed call in this process")
    parser.add_argument("--worker", required=True, help="JSON spec from measure_in_process")
    args = parser.parse_args()
    result = worker(json.loads(args.worker))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    _main()
