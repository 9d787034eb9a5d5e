"""Fetch Debian and PyPI packages into a cache folder and read files out of them, without installing.

The corpus (:mod:`walloc_cli.data.corpus`) is rebuilt from packages only: ``apt-get download``
for Debian (the apt lists must be current: ``apt-get update``), ``pip download --no-deps`` for
PyPI, both into a cache folder so a second build is offline. A ``.deb`` is an ``ar`` archive whose
``data.tar.*`` member holds the files; a wheel is a zip. Both are read here in pure Python (no
``dpkg-deb``), streaming, keeping only the members asked for, so a 400 MB package costs no disk
beyond its download. The licence of a file is looked up in the package's Debian ``copyright``
file (machine-readable DEP-5: the last ``Files:`` stanza whose pattern matches a tail of the
path wins) or in the wheel's ``METADATA``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from walloc_cli.errors import InputError


@dataclasses.dataclass(frozen=True)
class Package:
    """One package the corpus draws from: ``kind`` is ``"deb"`` or ``"pypi"``; PyPI ones are pinned."""

    name: str
    kind: str
    version: str = ""  # PyPI: the pinned version; Debian: whatever apt's candidate is (recorded)


def _ar_members(blob: bytes, name: str) -> Iterator[tuple[str, bytes]]:
    """The members of a Unix ``ar`` archive (a ``.deb``)."""
    if blob[:8] != b"!<arch>\n":
        raise InputError(f"{name}: not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos : pos + 60]
        member = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise InputError(f"{name}: bad ar member size at byte {pos}") from None
        start = pos + 60
        if start + size > len(blob):
            raise InputError(f"{name}: ar member {member} cut short")
        yield member, blob[start : start + size]
        pos = start + size + (size & 1)  # members are 2-byte aligned


def _deb_tar(blob: bytes, name: str) -> tarfile.TarFile:
    for member, data in _ar_members(blob, name):
        if member.startswith("data.tar"):
            if member.endswith(".zst"):
                try:
                    import zstandard
                except ImportError:
                    raise InputError(f"{name}: data.tar.zst (pip install zstandard to read it)") from None
                data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
                return tarfile.open(fileobj=io.BytesIO(data), mode="r:")
            try:
                return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
            except tarfile.TarError as error:
                raise InputError(f"{name}: bad {member} ({error})") from None
    raise InputError(f"{name}: no data.tar member")


def read_members(archive: Path, want: Callable[[str], bool]) -> dict[str, bytes]:
    """``{path: bytes}`` for the regular files of a ``.deb`` or wheel whose path ``want`` accepts.

    Paths are relative, without a leading ``./`` (``usr/share/...`` for Debian, ``pkg/data/x.png``
    for wheels). Symbolic links inside a ``.deb`` are followed once, within the package.
    """
    found: dict[str, bytes] = {}
    if archive.suffix in (".whl", ".zip"):
        try:
            with zipfile.ZipFile(archive) as bundle:
                for info in bundle.infolist():
                    if not info.is_dir() and want(info.filename):
                        found[info.filename] = bundle.read(info)
        except zipfile.BadZipFile as error:
            raise InputError(f"{archive}: bad wheel ({error})") from None
        return found
    links: dict[str, str] = {}
    with _deb_tar(archive.read_bytes(), str(archive)) as tar:
        members = tar.getmembers()
        for info in members:
            path = info.name.removeprefix("./")
            if not want(path):
                continue
            if info.isfile():
                handle = tar.extractfile(info)
                if handle is not None:
                    found[path] = handle.read()
            elif info.issym():
                links[path] = str((Path("/") / path).parent.joinpath(info.linkname).resolve()).lstrip("/")
        for path, target in links.items():
            for info in members:
                if info.isfile() and info.name.removeprefix("./") == target:
                    handle = tar.extractfile(info)
                    if handle is not None:
                        found[path] = handle.read()
    return found


def archive_in_cache(package: Package, cache: Path) -> Path | None:
    """The package file already in ``cache``, or None."""
    if package.kind == "deb":
        hits = sorted((cache / "deb").glob(f"{package.name}_*.deb"))
    else:
        stem = re.sub(r"[-_.]+", "_", package.name).lower()
        hits = [p for p in sorted((cache / "pypi").glob("*")) if re.sub(r"[-_.]+", "_", p.name).lower().startswith(f"{stem}_{package.version.replace('.', '_')}")]
    return hits[-1] if hits else None


def download(package: Package, cache: Path) -> Path:
    """The package file in ``cache``, fetched with ``apt-get download`` or ``pip download`` if absent."""
    found = archive_in_cache(package, cache)
    if found is not None:
        return found
    folder = cache / package.kind
    folder.mkdir(parents=True, exist_ok=True)
    if package.kind == "deb":
        command = ["apt-get", "download", package.name]
    else:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder), f"{package.name}=={package.version}"]
    try:
        run = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InputError(f"{package.name}: {' '.join(command[:3])} failed ({error})") from None
    found = archive_in_cache(package, cache)
    if run.returncode != 0 or found is None:
        detail = (run.stderr.strip().splitlines() or ["no file came back"])[-1]
        hint = " (run apt-get update first)" if package.kind == "deb" else ""
        raise InputError(f"{package.name}: download failed: {detail}{hint}")
    return found


def deb_version(archive: Path) -> str:
    """The version in a ``.deb``'s file name (``name_version_arch.deb``, ``%3a`` for the epoch colon)."""
    parts = archive.name.split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else ""


@dataclasses.dataclass
class Copyright:
    """A package's licence information: DEP-5 ``Files:`` stanzas, or one licence for the whole package."""

    stanzas: list[tuple[list[str], str]]  # (patterns, licence short name), in file order
    fallback: str  # when no stanza matches, or the file is not machine-readable

    def licence(self, path: str) -> str:
        """The licence of the file at ``path`` (a path inside the installed package or a bundle).

        The copyright file names source-tree paths, so a pattern matches any tail of ``path``;
        a pattern naming one file also matches by base name, and extensions are ignored for it
        (a build may convert ``sea1.jpg`` into the ``sea1.webp`` that ships).
        """
        parts = path.split("/")
        tails = ["/".join(parts[i:]) for i in range(len(parts))]
        stem = parts[-1].rsplit(".", 1)[0]
        found = ""
        for patterns, licence in self.stanzas:
            for pattern in patterns:
                if pattern == "*":
                    continue
                exact_file = not any(c in pattern for c in "*?[")
                if any(fnmatch.fnmatchcase(tail, pattern) for tail in tails) or (exact_file and pattern.rsplit("/", 1)[-1].rsplit(".", 1)[0] == stem):
                    found = licence  # DEP-5: the last matching stanza wins
        return found or self.fallback


def parse_copyright(text: str, fallback: str = "") -> Copyright:
    """Parse a Debian ``copyright`` file; ``fallback`` names the licence when it is not DEP-5."""
    stanzas: list[tuple[list[str], str]] = []
    default = ""
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:[ \t]*(.*(?:\n[ \t]+.*)*)", block, re.MULTILINE)
        licence = re.search(r"^License:[ \t]*(.*)$", block, re.MULTILINE)
        if not files or not licence or not licence.group(1).strip():
            continue
        patterns = files.group(1).split()
        if patterns == ["*"]:
            default = licence.group(1).strip()
        stanzas.append((patterns, licence.group(1).strip()))
    return Copyright(stanzas, default or fallback)


def wheel_licence(members: dict[str, bytes]) -> str:
    """The licence a wheel's ``METADATA`` declares (``License-Expression``, ``License`` or classifiers)."""
    for path, data in members.items():
        if path.endswith(".dist-info/METADATA"):
            text = data.decode("utf-8", errors="replace")
            expression = re.search(r"^License-Expression: *(.+)$", text, re.MULTILINE)
            short = re.search(r"^License: *([^:\n]{1,60})$", text, re.MULTILINE)  # not the first line of a pasted licence text
            classifiers = re.findall(r"^Classifier: License :: (?:OSI Approved :: )?(.+)$", text, re.MULTILINE)
            for match in (expression, short):
                if match:
                    return match.group(1).strip()
            if classifiers:
                return "; ".join(classifiers)
    return ""


def licences(package: Package, members: dict[str, bytes], fallback: str = "") -> Copyright:
    """The licence table of ``package`` from its members (read with the copyright file or
    ``METADATA`` included); ``fallback`` wins for a wheel (its data files' licence, not the code's)
    and stands in where the Debian file names none."""
    if package.kind == "pypi":
        return Copyright([], fallback or wheel_licence(members))
    text = members.get(f"usr/share/doc/{package.name}/copyright", b"").decode("utf-8", errors="replace")
    return parse_copyright(text, fallback=fallback)


def wants(patterns: list[str]) -> Callable[[str], bool]:
    """A member filter for :func:`read_members`: the ``fnmatch`` patterns, plus the licence files."""
    return lambda path: any(fnmatch.fnmatchcase(path, p) for p in patterns) or path.endswith(("/copyright", ".dist-info/METADATA"))
