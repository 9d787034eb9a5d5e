"""Audio reading and writing: WAV, FLAC, Ogg Vorbis and AIFF out; whatever libsndfile reads in.

The codec sees audio as blocks of float samples, ``(channels, frames)`` float32 in ``[-1, 1]``:
PCM integers ``v`` of ``b`` bits become ``v / 2**(b-1)``, exactly as libsndfile's (and so
``soundfile``'s) float reading scales them, and float files come through unchanged. Files are
never loaded whole: :class:`AudioReader` seeks and reads the frames asked for, so an hour-long
file costs the memory of one block. :class:`AudioWriter` writes block by block too, and its file
appears whole or not at all (:func:`walloc_cli.files.safe_io.atomic_output`).

Formats come from libsndfile through ``soundfile``: any file it recognises *by its content*
(never by its extension) is read: WAV/RF64/W64, FLAC, Ogg Vorbis and Opus, AIFF, CAF, AU, MP3 ...
:class:`AudioInfo` keeps the sample rate and the subtype (the sample encoding), so that a decoded
file comes back as the same kind of file.

Writing: the container follows the output's extension (``.wav``, ``.flac``, ``.ogg``,
``.aif``/``.aiff``; ``-`` is WAV on standard output). The subtype is the source's when the
container holds it, else the nearest that it does:

===============  ==========  ==========  ==========  ======
source subtype   WAV         AIFF        FLAC        OGG
===============  ==========  ==========  ==========  ======
PCM_S8           PCM_U8      PCM_S8      PCM_S8      VORBIS
PCM_U8           PCM_U8      PCM_U8      PCM_S8      VORBIS
PCM_16           PCM_16      PCM_16      PCM_16      VORBIS
PCM_24           PCM_24      PCM_24      PCM_24      VORBIS
PCM_32           PCM_32      PCM_32      PCM_24      VORBIS
FLOAT            FLOAT       FLOAT       PCM_24      VORBIS
DOUBLE           DOUBLE      DOUBLE      PCM_24      VORBIS
anything else    PCM_16      PCM_16      PCM_16      VORBIS
===============  ==========  ==========  ==========  ======

"Anything else" is the lossy and companded encodings (VORBIS, OPUS, MPEG_LAYER_III, ULAW, ALAW,
ADPCM, GSM ...): they hold at most about 16 bits' worth of signal, so 16-bit PCM keeps it all.
FLAC stores at most 24-bit integers, so 32-bit and float sources lose their lowest bits there.

PCM is quantised here, not in libsndfile, so that it is deterministic and counted:
``round(x * 2**(b-1))``, clipped to the ``b``-bit range (clipped samples are counted in
:attr:`AudioWriter.clipped`; a caller must report them, never drop them), then handed to
libsndfile as integers that it stores unchanged (int16 shifted left for 8-bit, int32 shifted
left for 24-bit). Hence reading a PCM file and writing it back with the same subtype gives the
same samples, bit for bit. float32 carries 24 significant bits: a PCM_32 or DOUBLE file round
trips exactly through float64 blocks (``read(..., dtype=np.float64)``), through float32 blocks
only when its samples fit in 24 bits.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np
import soundfile as sf

from walloc_cli.errors import InputError
from walloc_cli.format.header import MAX_CHANNELS, MAX_SAMPLERATE, MIN_SAMPLERATE
from walloc_cli.files.safe_io import STDIO, STDOUT_NAME, CheckedStdout, atomic_output, read_prefix, write_failure

__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLERATE",
    "MIN_SAMPLERATE",
    "OUTPUT_EXTENSIONS",
    "PCM_BITS",
    "AudioInfo",
    "AudioReader",
    "AudioWriter",
    "audio_info",
    "output_subtype",
    "quantise",
    "read_audio",
    "sniff_audio",
]

# The sample-rate range (Hz, telephone-band oddities to 768 kHz studio rates) and channel count
# we accept are the format's limits (libsndfile reads more channels, but no real recording has them).

#: Output extension -> libsndfile major format.
OUTPUT_EXTENSIONS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aif": "AIFF", ".aiff": "AIFF"}

#: PCM subtype -> bits per sample.
PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
#: Float subtype -> bits per sample.
FLOAT_BITS = {"FLOAT": 32, "DOUBLE": 64}

# Subtypes each container can be written with by us (those we quantise, plus float and Vorbis),
# and the substitutes for the ones it cannot hold (see the table in the module docstring).
_WRITABLE = {
    "WAV": ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"),
    "AIFF": ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"),
    "FLAC": ("PCM_S8", "PCM_16", "PCM_24"),
    "OGG": ("VORBIS",),
}
_SUBSTITUTE = {
    "WAV": {"PCM_S8": "PCM_U8"},  # 8-bit WAV is unsigned by definition
    "AIFF": {},
    "FLAC": {"PCM_U8": "PCM_S8", "PCM_32": "PCM_24", "FLOAT": "PCM_24", "DOUBLE": "PCM_24"},
    "OGG": {},
}
_OGG_DEFAULT = "VORBIS"
_LOSSY_DEFAULT = "PCM_16"

# libsndfile's log line for a sample chunk that the file is too short to hold, e.g.
# "data : 20000 (should be 9978)" (WAV) or " SSND : 20008 (should be 9981)" (AIFF).
_SHORT_CHUNK = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Streaming writers (ffmpeg, sox, arecord to a pipe) cannot seek back to fill in the sizes and
# leave a placeholder this large instead; such a file is not truncated, its length is unknown.
_UNKNOWN_LENGTH = 0x7FFF_F000

# sndfile.h: SFC_SET_ADD_PEAK_CHUNK. libsndfile adds a PEAK chunk with a time stamp to float
# WAV/AIFF files, which would make two writes of the same samples differ.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds, and what a writer needs to give the same kind of file back.

    Attributes:
        samplerate: frames per second, in Hz.
        channels: samples per frame.
        frames: length in frames (samples per channel).
        format: libsndfile major format, e.g. ``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"AIFF"``.
        subtype: libsndfile subtype (sample encoding), e.g. ``"PCM_16"``, ``"PCM_24"``,
            ``"FLOAT"``, ``"VORBIS"``.
    """

    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def peak(self) -> float:
        """Full scale of the float samples, the peak used for PSNR: always 1.0."""
        return 1.0

    @property
    def bits(self) -> int | None:
        """Bits per sample of the subtype (8/16/24/32/64), ``None`` for lossy/companded ones."""
        return PCM_BITS.get(self.subtype, FLOAT_BITS.get(self.subtype))

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.frames / self.samplerate


# --------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------


def _libsndfile_reason(exc: BaseException) -> str:
    """libsndfile's own message without soundfile's "Error opening <path>: " prefix."""
    text = getattr(exc, "error_string", None) or str(exc)
    return text.strip().rstrip(".").splitlines()[0] if text.strip() else type(exc).__name__


@contextlib.contextmanager
def _open_by_content(path: Path) -> Iterator[sf.SoundFile]:
    """Open ``path`` for reading as libsndfile recognises it from its content only.

    Given a file *name*, soundfile reads ``.raw`` as headerless PCM and libsndfile guesses
    headerless formats (``.vox``, ``.gsm`` ...) from the extension; given a file descriptor,
    neither has a name to go by, so only the bytes decide. The descriptor is ours to close
    (libsndfile would close it on some failures and not on others).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        with sf.SoundFile(fd, "r", closefd=False) as file:
            yield file
    finally:
        os.close(fd)


def _probe(path: Path) -> tuple[AudioInfo, str]:
    """The header's description of ``path`` and libsndfile's log of parsing it."""
    read_prefix(path, 1, "an audio file")  # file-system problems and empty files, one line each
    try:
        with _open_by_content(path) as file:
            info = AudioInfo(int(file.samplerate), int(file.channels), int(file.frames), str(file.format), str(file.subtype))
            return info, str(file.extra_info)
    except sf.LibsndfileError as exc:
        reason = _libsndfile_reason(exc)
        if "not recognised" in reason:
            raise InputError("not an audio file (format not recognised by its content)") from exc
        raise InputError(f"corrupt or truncated audio file ({reason})") from exc
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise InputError(f"corrupt or truncated audio file ({_libsndfile_reason(exc)})") from exc


def sniff_audio(path: Path) -> bool:
    """True when libsndfile recognises ``path`` as audio by its content (not its extension)."""
    try:
        _probe(Path(path))
    except InputError:
        return False
    return True


def _check_truncated(log: str, fmt: str) -> None:
    """Refuse a WAV/AIFF whose sample chunk is longer than the file (libsndfile reads on)."""
    for _, declared, present in _SHORT_CHUNK.findall(log):
        if int(present) < int(declared) < _UNKNOWN_LENGTH:
            raise InputError(
                f"truncated {fmt} file (the header promises {int(declared)} bytes of samples, "
                f"the file holds {int(present)})"
            )


def _check_info(info: AudioInfo) -> None:
    if info.frames <= 0:
        raise InputError("empty audio (no samples)")
    if not MIN_SAMPLERATE <= info.samplerate <= MAX_SAMPLERATE:
        raise InputError(
            f"sample rate {info.samplerate} Hz is outside {MIN_SAMPLERATE}..{MAX_SAMPLERATE} Hz"
        )
    if info.channels > MAX_CHANNELS:
        raise InputError(f"{info.channels} channels (at most {MAX_CHANNELS} are supported)")


def audio_info(path: Path) -> AudioInfo:
    """Describe an audio file from its header (nothing is decoded).

    Raises:
        InputError: missing/unreadable/empty file, not audio by its content, corrupt or truncated
            header, zero frames, sample rate outside ``MIN_SAMPLERATE..MAX_SAMPLERATE``, more
            than ``MAX_CHANNELS`` channels. Messages never contain the path: the caller adds it.
    """
    info, log = _probe(Path(path))
    _check_truncated(log, info.format)
    _check_info(info)
    return info


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class AudioReader:
    """Random access to an audio file's samples in bounded memory (a context manager).

    ``AudioReader("-")`` spools standard input to a temporary file first (audio containers need
    to seek); it is removed on :meth:`close`.

    Example::

        with AudioReader(path) as reader:
            block = reader.read(0, min(65536, reader.info.frames))   # (channels, n) float32
    """

    def __init__(self, path: Path | str) -> None:
        self._spool: tempfile.TemporaryDirectory[str] | None = None
        self._file: sf.SoundFile | None = None
        self._stack = contextlib.ExitStack()
        source = Path(path)
        try:
            if str(path) == STDIO:
                source = self._spool_stdin()
            self.info: AudioInfo = audio_info(source)
            self._file = self._stack.enter_context(_open_by_content(source))
        except BaseException:
            self.close()
            raise

    def _spool_stdin(self) -> Path:
        """Copy standard input to a temporary file, in chunks (bounded memory)."""
        self._spool = tempfile.TemporaryDirectory(prefix="walloc-")
        spooled = Path(self._spool.name) / "stdin"
        with open(spooled, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        return spooled

    def read(self, start: int, stop: int, dtype: type[np.floating] = np.float32) -> np.ndarray:
        """Frames ``start`` to ``stop`` (exclusive) as ``(channels, stop - start)`` floats.

        PCM is scaled to ``[-1, 1)`` by ``2**(bits-1)``; float files come as stored. Only whole
        frames inside the file may be asked for: the caller clamps and pads.

        Raises:
            ValueError: ``0 <= start <= stop <= info.frames`` does not hold.
            InputError: the data ends early or is corrupt; NaN/Inf in a float file.
        """
        if self._file is None:
            raise ValueError("read from a closed AudioReader")
        if not 0 <= start <= stop <= self.info.frames:
            raise ValueError(f"frames {start}..{stop} are outside the file (0..{self.info.frames})")
        count = stop - start
        try:
            self._file.seek(start)
            frames = self._file.read(count, dtype=np.dtype(dtype).name, always_2d=True)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise InputError(f"corrupt or truncated audio file ({_libsndfile_reason(exc)})") from exc
        if frames.shape[0] != count:
            raise InputError(
                f"truncated audio file (frames {start}..{stop} asked for, "
                f"only {start + frames.shape[0]} are there)"
            )
        block = np.ascontiguousarray(frames.T)  # soundfile gives (n, channels)
        if self.info.subtype in FLOAT_BITS and not np.isfinite(block).all():
            raise InputError("audio contains NaN or infinite samples")
        return block

    def blocks(self, frames: int, dtype: type[np.floating] = np.float32) -> Iterator[np.ndarray]:
        """The whole file in consecutive ``(channels, <= frames)`` blocks."""
        if frames <= 0:
            raise ValueError("block length must be positive")
        for start in range(0, self.info.frames, frames):
            yield self.read(start, min(start + frames, self.info.frames), dtype)

    def close(self) -> None:
        """Close the file and remove the spooled copy of standard input, if any."""
        self._file = None
        self._stack.close()
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def read_audio(path: Path | str, dtype: type[np.floating] = np.float32) -> tuple[np.ndarray, AudioInfo]:
    """Read a whole file: ``(channels, frames)`` floats (see :meth:`AudioReader.read`) and its info."""
    with AudioReader(path) as reader:
        return reader.read(0, reader.info.frames, dtype), reader.info


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _container_for(path: Path) -> str:
    if str(path) == STDIO:
        return "WAV"
    suffix = path.suffix.lower()
    container = OUTPUT_EXTENSIONS.get(suffix)
    if container is None:
        shown = f"'{suffix}'" if suffix else "(none)"
        raise InputError(f"unsupported output extension {shown} (use one of {', '.join(OUTPUT_EXTENSIONS)})")
    return container


def output_subtype(source_subtype: str, container: str) -> str:
    """The subtype written to ``container`` for a ``source_subtype`` file (module docstring table)."""
    if container not in _WRITABLE:
        raise InputError(f"unsupported output format {container!r} (use one of {', '.join(_WRITABLE)})")
    if container == "OGG":
        return _OGG_DEFAULT
    subtype = _SUBSTITUTE[container].get(source_subtype, source_subtype)
    return subtype if subtype in _WRITABLE[container] else _LOSSY_DEFAULT


def quantise(block: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Float samples -> ``bits``-bit PCM integers: ``round(x * 2**(bits-1))``, clipped.

    Args:
        block: any shape, float (``(channels, n)`` in practice), nominally in ``[-1, 1]``.
        bits: 8, 16, 24 or 32.

    Returns:
        int32 integers of the same shape in ``[-2**(bits-1), 2**(bits-1) - 1]``, and how many
        samples had to be clipped into that range. The one rule that turns decoded audio into
        the samples a user gets back (files and PSNR). Ties round to even (``np.rint``).
    """
    if not np.isfinite(block).all():
        raise ValueError("audio block contains NaN or infinite values")
    scale = float(2 ** (bits - 1))
    # float64: x * 2**31 needs 32 significant bits, more than float32 has.
    values = np.rint(np.asarray(block, dtype=np.float64) * scale)
    low, high = -scale, scale - 1
    clipped = int(np.count_nonzero(values < low) + np.count_nonzero(values > high))
    np.clip(values, low, high, out=values)
    return values.astype(np.int32), clipped


def _pcm_for_libsndfile(ints: np.ndarray, bits: int) -> np.ndarray:
    """Integers as the int16/int32 libsndfile stores unchanged: it keeps the *top* bits.

    libsndfile converts int16 to 8-bit by ``>> 8`` and int32 to 24-bit by ``>> 8``, so 8-bit
    values go in shifted up by 8 bits in int16 and 24-bit values shifted up by 8 bits in int32.
    """
    if bits == 8:
        return (ints << 8).astype(np.int16)
    if bits == 16:
        return ints.astype(np.int16)
    if bits == 24:
        return ints << 8
    return ints


class _WriteGuard:
    """The binary file libsndfile writes into (soundfile's virtual I/O), keeping I/O errors.

    soundfile calls ``write``/``seek``/``tell`` from cffi callbacks, where an exception is only
    printed ("Exception ignored ... Traceback") and becomes a short write that soundfile then
    asserts on. Here the first ``OSError`` (a full disk, the file-size limit) is kept in
    :attr:`error` and later calls do nothing; :class:`AudioWriter` raises it as one line.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        if self.error is None:
            try:
                return self.handle.write(data)
            except OSError as error:
                self.error = error
        return 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self.error is None:
            try:
                return self.handle.seek(offset, whence)
            except OSError as error:
                self.error = error
        return 0

    def tell(self) -> int:
        if self.error is None:
            try:
                return self.handle.tell()
            except OSError as error:
                self.error = error
        return 0


class AudioWriter:
    """Write an audio file block by block; it appears whole on success, not at all on error.

    ``AudioWriter(path, info)`` writes ``info.channels`` channels at ``info.samplerate`` in the
    container named by ``path``'s extension, with ``subtype`` if given, else the subtype that
    :func:`output_subtype` picks for ``info.subtype``. ``path`` ``-`` writes WAV to standard
    output (through a temporary file: the header needs the final length).

    Example::

        with AudioWriter(Path("out.flac"), info) as writer:
            writer.write(block)      # (channels, n) float
        print(writer.clipped)        # samples clipped by PCM quantisation

    Raises:
        InputError: unknown extension, a subtype the container cannot hold, or a rate/channel
            count the container refuses.
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """

    def __init__(self, path: Path | str, info: AudioInfo, overwrite: bool = False, subtype: str | None = None) -> None:
        self.path = Path(path)
        self.info = info
        self.container = _container_for(self.path)
        self.subtype = subtype or output_subtype(info.subtype, self.container)
        if self.subtype not in _WRITABLE[self.container]:
            raise InputError(
                f"the {self.container} format cannot be written as {self.subtype} "
                f"(use one of {', '.join(_WRITABLE[self.container])})"
            )
        self._to_stdout = str(path) == STDIO
        if not self._to_stdout and self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: already exists (use -f to overwrite)")
        self.overwrite = overwrite
        self.clipped = 0
        self.frames = 0
        self._stack: contextlib.ExitStack | None = None
        self._file: sf.SoundFile | None = None
        self._guard: _WriteGuard | None = None

    def __enter__(self) -> AudioWriter:
        stack = contextlib.ExitStack()
        try:
            self._guard = _WriteGuard(stack.enter_context(self._target()))
            # Runs after the SoundFile is closed (which writes the final header) and before the
            # output is renamed into place: a failed write then fails the whole file.
            stack.push(self._check_written)
            self._file = stack.enter_context(self._open(self._guard))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    @contextlib.contextmanager
    def _target(self) -> Iterator[IO[bytes]]:
        """The binary handle libsndfile writes into: the atomic output, or a spool for stdout."""
        if not self._to_stdout:
            with atomic_output(self.path, overwrite=self.overwrite) as handle:
                yield handle
            return
        with tempfile.TemporaryFile(prefix="walloc-") as spool:
            yield spool
            spool.seek(0)
            stdout = CheckedStdout()  # a full disk or closed pipe fails the command, named
            shutil.copyfileobj(spool, stdout, 1 << 20)
            stdout.flush()

    def _open(self, handle: _WriteGuard) -> sf.SoundFile:
        try:
            file = sf.SoundFile(
                handle, "w", samplerate=self.info.samplerate, channels=self.info.channels,
                subtype=self.subtype, format=self.container,
            )
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
            raise InputError(
                f"cannot write {self.info.channels} channels at {self.info.samplerate} Hz as "
                f"{self.container} {self.subtype} ({_libsndfile_reason(exc)})"
            ) from exc
        with contextlib.suppress(AttributeError):  # soundfile internals; the PEAK chunk is cosmetic
            sf._snd.sf_command(file._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
        return file

    def write(self, block: np.ndarray) -> None:
        """Append ``(channels, n)`` float samples (PCM subtypes: quantised, clipping counted)."""
        if self._file is None:
            raise ValueError("write to an AudioWriter outside its with block")
        if block.ndim != 2 or block.shape[0] != self.info.channels:
            raise ValueError(f"expected a block of shape ({self.info.channels}, n), got {block.shape}")
        if not np.issubdtype(block.dtype, np.floating):
            raise ValueError(f"audio blocks must be floating point, not {block.dtype}")
        bits = PCM_BITS.get(self.subtype)
        if bits is None:  # FLOAT, DOUBLE, VORBIS: libsndfile takes floats as they are
            if not np.isfinite(block).all():
                raise ValueError("audio block contains NaN or infinite values")
            samples = block.T
        else:
            ints, clipped = quantise(block, bits)
            self.clipped += clipped
            samples = _pcm_for_libsndfile(ints, bits).T
        try:
            self._file.write(np.ascontiguousarray(samples))  # soundfile wants (n, channels)
        except AssertionError:  # soundfile asserts that every frame was written
            if self._guard is None or self._guard.error is None:
                raise
        self._check_written(None, None, None)
        self.frames += block.shape[1]

    def _check_written(self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None) -> bool:
        """Raise the write error the guard kept, as one line (only when nothing else is failing)."""
        error = self._guard.error if self._guard is not None else None
        if error is not None and kind is None:
            raise write_failure(STDOUT_NAME if self._to_stdout else str(self.path), error)
        return False

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        self._file = None
        if stack is not None:
            # Closing the SoundFile finishes the header, then atomic_output renames (or, when an
            # exception is passing through, deletes) the temporary file.
            stack.__exit__(kind, value, trace)
