"""Latents in shards: many ``.wlc`` files in a few tar files (the WebDataset layout), so a
training job streams them from object storage instead of opening one object per sample.

Layout (what WebDataset and its readers expect): a plain, uncompressed tar whose members come in
groups sharing a *key* (the member's name up to the first dot of its last path part):
``cats/a.wlc`` with ``cats/a.cls`` (the class index as decimal text, when labelled). The ``.wlc``
members are complete ``.wlc`` files, read with :func:`walloc_cli.api.latents.read_latents` from
their bytes. The ``.wlc`` payload is already entropy coded: gzip over the tar gains nothing.

* :func:`write_shards` packs files into ``pattern % index`` shards of at most ``max_count``
  samples and ``max_bytes`` bytes each, every shard written through a temporary file and renamed
  (:func:`walloc_cli.files.safe_io.atomic_output`), refusing to overwrite.
* :func:`iter_samples` streams one shard (a path, a URI fsspec opens, or a binary stream) in
  one sequential read (``tarfile`` stream mode: no seeks, so an HTTP or S3 stream works) and
  yields ``(key, {extension: bytes})`` samples.

:class:`walloc_cli.api.dataset.WlcShards` is the PyTorch ``IterableDataset`` over these.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from walloc_cli.errors import FormatError, InputError
from walloc_cli.files.safe_io import atomic_output

Sample = tuple[str, dict[str, bytes]]


def sample_key(name: str) -> tuple[str, str]:
    """``"cats/a.wlc"`` -> ``("cats/a", "wlc")``: the key is everything before the first dot of
    the last path part (WebDataset's rule: ``x.seg.png`` is key ``x``, extension ``seg.png``)."""
    path = PurePosixPath(name)
    stem, dot, extension = path.name.partition(".")
    if not stem or not dot:
        raise FormatError(f"shard member {name!r} has no key.extension name")
    return str(path.with_name(stem)), extension


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def write_shards(
    files: Sequence[str | Path],
    pattern: str | Path,
    *,
    root: str | Path | None = None,
    labels: Sequence[int] | None = None,
    max_count: int = 1000,
    max_bytes: int = 256 << 20,
    overwrite: bool = False,
) -> list[Path]:
    """Pack ``.wlc`` ``files`` into shards named ``pattern % index`` (e.g.
    ``"shards/train-%05d.tar"``); returns the shards written.

    Keys are the files' paths below ``root`` without extension (default: the file name alone,
    which must then be unique), other dots of the name made ``_`` (a reader ends a key at the
    first dot of a name: ``ubuntu-16.04_a.wlc`` is key ``ubuntu-16_04_a``). ``labels`` (one int per file) are stored as ``KEY.cls``. A shard
    closes before it would pass ``max_count`` samples or ``max_bytes`` bytes (one larger file
    still gets a shard of its own). Files are not decoded; one that is not a ``.wlc`` file is
    refused by its magic bytes before anything is written.
    """
    from walloc_cli.format.container import sniff

    if "%" not in str(pattern):
        raise InputError(f"shard pattern {pattern!r} needs a %d-style index, e.g. shards/train-%05d.tar")
    if labels is not None and len(labels) != len(files):
        raise InputError(f"{len(labels)} labels for {len(files)} files")
    keys: dict[str, Path] = {}
    for path in map(Path, files):
        with open(path, "rb") as handle:
            if not sniff(handle.read(8)):
                raise InputError(f"{path}: not a .wlc file")
        rel = PurePosixPath(*(path.relative_to(root) if root is not None else Path(path.name)).parts).with_suffix("")
        key = str(rel.with_name(rel.name.replace(".", "_")))  # a dot would end the key (sample_key)
        if key in keys:
            raise InputError(f"{path}: its key {key!r} is also {keys[key]}'s (pass root= to keep folders in the keys)")
        keys[key] = path
    written: list[Path] = []
    groups: list[list[int]] = [[]]
    size = 0
    for index, path in enumerate(keys.values()):
        bytes_here = path.stat().st_size + 1024  # tar headers and padding
        if groups[-1] and (len(groups[-1]) >= max_count or size + bytes_here > max_bytes):
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += bytes_here
    names = list(keys)
    paths = list(keys.values())
    targets = [Path(str(pattern) % number) for number in range(len(groups))]
    for target in targets:  # every refusal before the first byte
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target}: already exists (use overwrite=True)")
    for target, group in zip(targets, groups):
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(target, overwrite=overwrite) as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for index in group:
                _add(archive, f"{names[index]}.wlc", paths[index].read_bytes())
                if labels is not None:
                    _add(archive, f"{names[index]}.cls", str(int(labels[index])).encode())
        written.append(target)
    return written


@contextlib.contextmanager
def _opened(source: str | Path | BinaryIO) -> Iterator[BinaryIO]:
    if not isinstance(source, (str, Path)):
        yield source
        return
    text = str(source)
    if "://" in text and not text.startswith("file://"):
        import fsspec  # the `dask` extra brings it; s3fs, gcsfs ... add the stores

        with fsspec.open(text, "rb") as handle:
            yield handle
        return
    with open(text.removeprefix("file://"), "rb") as handle:
        yield handle


class _Counted:
    """A binary stream that counts the bytes read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.count = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def iter_samples(source: str | Path | BinaryIO) -> Iterator[Sample]:
    """The samples of one shard in order: ``(key, {"wlc": bytes, "cls": bytes, ...})``.

    Members of one key must be adjacent (as :func:`write_shards` and WebDataset's writers put
    them); a key seen again after another one is refused, as is a damaged tar, each naming the
    shard."""
    name = source if isinstance(source, (str, Path)) else getattr(source, "name", "shard")
    seen: set[str] = set()
    key: str | None = None
    parts: dict[str, bytes] = {}
    try:
        with _opened(source) as stream, tarfile.open(fileobj=(counted := _Counted(stream)), mode="r|") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                member_key, extension = sample_key(member.name)
                if member_key != key:
                    if key is not None:
                        yield key, parts
                    if member_key in seen:
                        raise FormatError(f"key {member_key!r} appears twice, apart")
                    seen.add(member_key)
                    key, parts = member_key, {}
                reader = archive.extractfile(member)
                assert reader is not None  # a regular file
                parts[extension] = reader.read()
            # tarfile takes an end of data where a member's header would start as the end of
            # the archive: a shard cut there would silently lose its last samples. A whole tar
            # ends with two zero blocks after the last member, which are then read too.
            if counted.count < archive.offset + tarfile.BLOCKSIZE:
                raise FormatError(f"truncated after {archive.offset} bytes (no end-of-archive blocks)")
            if key is not None:
                yield key, parts
    except (tarfile.TarError, EOFError) as error:
        raise FormatError(f"{name}: not a readable tar shard ({error})") from None
    except FormatError as error:
        if str(error).startswith(f"{name}: "):
            raise
        raise FormatError(f"{name}: {error}") from None


def iter_shards(sources: Iterable[str | Path]) -> Iterator[Sample]:
    """The samples of several shards, one shard after another."""
    for source in sources:
        yield from iter_samples(source)


__all__ = ["Sample", "iter_samples", "iter_shards", "sample_key", "write_shards"]
