"""The photo corpus builder: .rcc and .edj readers, package reading, licences, dedupe and the
package-level split, on tiny crafted inputs (no network, no real package)."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from walloc_cli.data import corpus, eet, packages, rcc
from walloc_cli.data.corpus_sources import PhotoSource
from walloc_cli.errors import InputError


def _photo(seed: int, size: tuple[int, int] = (320, 288)) -> Image.Image:
    """A photo-like RGB image: a smooth random field plus grain (so the difference hash is stable)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    grain = rng.normal(0, 4, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(coarse) + grain, 0, 255).astype(np.uint8))


def _encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


# --- .rcc ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("compress", [False, True])
def test_rcc_round_trip(version: int, compress: bool) -> None:
    files = {"a/b/photo.webp": b"x" * 300, "a/c.txt": b"hello", "top.bin": bytes(range(256))}
    bundle = rcc.RccBundle(rcc.write_rcc(files, version=version, compress=compress))
    assert bundle.version == version
    entries = {e.path: e for e in bundle.entries()}
    assert set(entries) == set(files)
    for path, data in files.items():
        assert bundle.read(entries[path]) == data
        assert bool(entries[path].flags & rcc.COMPRESSED_ZLIB) == compress


def test_rcc_rejects_bad_input() -> None:
    good = rcc.write_rcc({"x/y.png": b"12345678"}, compress=True)
    with pytest.raises(InputError, match="qres"):
        rcc.RccBundle(b"nope" + good[4:])
    with pytest.raises(InputError, match="version"):
        rcc.RccBundle(good[:4] + struct.pack(">I", 9) + good[8:])
    bundle = rcc.RccBundle(good)
    (entry,) = bundle.entries()
    damaged = bytearray(good)
    damaged[entry.data_offset + 8 : entry.data_offset + 12] = b"\0\0\0\0"  # inside the zlib stream
    with pytest.raises(InputError):
        rcc.RccBundle(bytes(damaged)).read(entry)
    with pytest.raises(InputError):
        rcc.RccBundle(good[: bundle.tree_offset + 10]).entries()  # the tree is cut short


def test_rcc_tree_cycle_is_an_error() -> None:
    blob = bytearray(rcc.write_rcc({"d/f": b"1"}))
    bundle = rcc.RccBundle(bytes(blob))
    # Point the directory "d" (node 1) back at the root as its first child.
    struct.pack_into(">I", blob, bundle.tree_offset + bundle.node_size + 10, 0)
    with pytest.raises(InputError, match="cycle"):
        rcc.RccBundle(bytes(blob)).entries()


# --- .edj (Eet) ---------------------------------------------------------------------------


def test_eet_reads_jpeg_and_lossless_images() -> None:
    jpeg = _encode(_photo(1), "JPEG")
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 200, 30, 255
    rgba[2, 3] = (1, 2, 3, 4)
    blob = eet.write_eet({"edje/images/0": jpeg, "edje/images/1": eet.lossless_image_entry(rgba), "edje/other": b"data"})
    file = eet.EetFile(blob)
    assert [e.name for e in file.images()] == ["edje/images/0", "edje/images/1"]
    first, second = file.images()
    assert file.image(first).size == (320, 288)
    assert np.array_equal(np.asarray(file.image(second)), rgba)


def test_eet_compressed_entry_and_errors() -> None:
    blob = eet.write_eet({"k": b"payload" * 50}, compress=True)
    file = eet.EetFile(blob)
    (entry,) = file.entries()
    assert entry.flags & eet.FLAG_COMPRESSED and file.read(entry) == b"payload" * 50
    with pytest.raises(InputError, match="magic"):
        eet.EetFile(b"\0" * 32)
    with pytest.raises(InputError, match="longer than the file"):
        eet.EetFile(struct.pack(">III", eet.MAGIC, 1000, 0))
    etc = eet.EetFile(eet.write_eet({"edje/images/0": b"\x88\x9d\xfe\xa8" + b"\0" * 40}))  # an ETC-coded image
    with pytest.raises(InputError, match="codec"):
        etc.image(etc.entries()[0])
    bad = eet.lossless_image_entry(np.zeros((4, 4, 4), np.uint8))[:-3]
    shaky = eet.EetFile(eet.write_eet({"edje/images/0": bad}))
    with pytest.raises(InputError):
        shaky.image(shaky.entries()[0])


# --- packages -----------------------------------------------------------------------------


def _tar_xz(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(f"./{name}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def make_deb(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A minimal ``.deb`` (ar: debian-binary, control.tar.xz, data.tar.xz) holding ``files``."""
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", _tar_xz({"control": b"Package: x\n"})), ("data.tar.xz", _tar_xz(files, links))]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) & 1 else b"")
    path.write_bytes(bytes(out))
    return path


def test_read_members_of_a_deb_and_a_wheel(tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "pkg_1.0-1_all.deb", {"usr/share/a.jpg": b"A", "usr/share/b.txt": b"B"}, {"usr/share/c.jpg": "a.jpg"})
    found = packages.read_members(deb, lambda p: p.endswith(".jpg"))
    assert found == {"usr/share/a.jpg": b"A", "usr/share/c.jpg": b"A"}
    assert packages.deb_version(deb) == "1.0-1"
    assert packages.deb_version(Path("x_1%3a2.0_all.deb")) == "1:2.0"
    wheel = tmp_path / "w-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("w/data/x.png", b"X")
        z.writestr("w-1.0.dist-info/METADATA", "Name: w\nLicense: BSD-3-Clause\n")
    members = packages.read_members(wheel, lambda p: True)
    assert members["w/data/x.png"] == b"X" and packages.wheel_licence(members) == "BSD-3-Clause"
    with pytest.raises(InputError, match="ar header"):
        (tmp_path / "bad.deb").write_bytes(b"garbage")
        packages.read_members(tmp_path / "bad.deb", lambda p: True)


def test_copyright_last_matching_stanza_wins() -> None:
    text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-2+\n\n"
        "Files: Media/*\n Help/*\nLicense: CC-BY-SA-3.0\n\n"
        "Files: Media/Backgrounds/special.jpg\nLicense: CC0-1.0\n\n"
        "License: GPL-2+\n text of the licence\n"
    )
    rights = packages.parse_copyright(text)
    assert rights.licence("usr/share/scratch/Media/Backgrounds/a.jpg") == "CC-BY-SA-3.0"
    assert rights.licence("usr/share/scratch/Help/x.png") == "CC-BY-SA-3.0"
    assert rights.licence("usr/share/scratch/Media/Backgrounds/special.jpg") == "CC0-1.0"
    assert rights.licence("usr/bin/scratch") == "GPL-2+"
    assert packages.parse_copyright("free text, not DEP-5", fallback="GPL-2+").licence("a/b") == "GPL-2+"


def test_cached_archive_is_used_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "deb").mkdir()
    deb = make_deb(tmp_path / "deb" / "thing_2.0_all.deb", {"a": b"1"})
    (tmp_path / "pypi").mkdir()
    wheel = tmp_path / "pypi" / "Some_Pkg-0.2.2.post1-py3-none-any.whl"
    wheel.write_bytes(b"")
    monkeypatch.setattr(packages.subprocess, "run", lambda *a, **k: pytest.fail("no download expected"))
    assert packages.download(packages.Package("thing", "deb"), tmp_path) == deb
    assert packages.download(packages.Package("some-pkg", "pypi", "0.2.2.post1"), tmp_path) == wheel


# --- the corpus: selection, dedupe, split, manifest ----------------------------------------


@pytest.fixture()
def cache(tmp_path: Path) -> dict[str, Path]:
    """Three fake Debian packages: 'alpha' (train), 'beta' (validation), 'gamma' (holds a test photo)."""
    base = _photo(10, (640, 576))
    transparent = _photo(11).convert("RGBA")
    transparent.putpixel((0, 0), (0, 0, 0, 0))
    folder = tmp_path / "cache" / "deb"
    folder.mkdir(parents=True)
    copyright = b"Files: *\nLicense: GPL-2+\n\nFiles: photos/free/*\nLicense: CC0-1.0\n"
    alpha = {
        "usr/share/alpha/photos/one.png": _encode(_photo(1)),
        "usr/share/alpha/photos/free/two.jpg": _encode(_photo(2), "JPEG"),
        "usr/share/alpha/photos/dup_of_beta.png": _encode(base),  # beta downscales its copy: a look-alike, beta (val) keeps it
        "usr/share/alpha/photos/small.png": _encode(_photo(3, (300, 200))),
        "usr/share/alpha/photos/cutout.png": _encode(transparent),
        "usr/share/alpha/photos/palette.png": _encode(_photo(4).convert("P")),
        "usr/share/alpha/photos/drawing.txt": b"not an image, not included",
        "usr/share/doc/alpha/copyright": copyright,
        "usr/share/alpha/bundle.rcc": rcc.write_rcc({"res/inside.png": _encode(_photo(5)), "res/skip.txt": b"t"}, compress=True),
        "usr/share/alpha/bg.edj": eet.write_eet({"edje/images/0": _encode(_photo(6, (400, 300)), "JPEG"), "edje/images/1": _encode(_photo(6, (800, 600)), "JPEG")}),
    }
    beta = {
        "usr/share/beta/base.png": _encode(base),
        "usr/share/beta/rescaled.png": _encode(_photo(7, (640, 576))),
        "usr/share/doc/beta/copyright": b"not machine-readable",
    }
    gamma = {
        "usr/share/gamma/held.png": _encode(_photo(8)),
        "usr/share/gamma/near_held.png": _encode(_photo(8).resize((400, 360), Image.Resampling.LANCZOS)),  # a rescaled copy: dropped
        "usr/share/gamma/other.png": _encode(_photo(9)),
        "usr/share/doc/gamma/copyright": b"Files: *\nLicense: Expat\n",
    }
    paths = {name: make_deb(folder / f"{name}_1.{i}_all.deb", files) for i, (name, files) in enumerate({"alpha": alpha, "beta": beta, "gamma": gamma}.items())}
    return paths


SOURCES = (
    PhotoSource(packages.Package("alpha", "deb"), ("usr/share/alpha/photos/*", "usr/share/alpha/bundle.rcc!res/*.png", "usr/share/alpha/bg.edj!edje/images/*"), exclude=("*.txt",), largest_only=True, target_side=10_000),
    PhotoSource(packages.Package("beta", "deb"), ("usr/share/beta/*.png",), licence="GPL-2+ (whole package)", min_factor=2, target_side=300),
    PhotoSource(packages.Package("gamma", "deb"), ("usr/share/gamma/*.png",), target_side=10_000),
)
TEST = frozenset({"gamma:usr/share/gamma/held.png"})


def _build(out: Path, cache_dir: Path, **options: object) -> list[corpus.CorpusPhoto]:
    def offline(package: packages.Package, where: Path) -> Path:
        found = packages.archive_in_cache(package, where)
        assert found is not None, "tests never download"
        return found

    return corpus.build_photo_corpus(out, cache_dir, sources=SOURCES, test_keys=TEST, val_packages=frozenset({"beta"}), fetch=offline, **options)  # type: ignore[arg-type]


def test_corpus_rules(tmp_path: Path, cache: dict[str, Path]) -> None:
    out = tmp_path / "out"
    records = _build(out, tmp_path / "cache")
    by_key = {r.key.split(":", 1)[1]: r for r in records}
    kept = {k for k, r in by_key.items() if not r.dropped}
    assert kept == {
        "usr/share/alpha/photos/one.png", "usr/share/alpha/photos/free/two.jpg", "usr/share/alpha/bundle.rcc!res/inside.png",
        "usr/share/alpha/bg.edj!edje/images/1", "usr/share/beta/base.png", "usr/share/beta/rescaled.png",
        "usr/share/gamma/held.png", "usr/share/gamma/other.png",
    }
    assert "duplicate of beta:" in by_key["usr/share/alpha/photos/dup_of_beta.png"].dropped  # validation keeps its copy
    assert "duplicate of gamma:usr/share/gamma/held.png" == by_key["usr/share/gamma/near_held.png"].dropped
    assert "under 256" in by_key["usr/share/alpha/photos/small.png"].dropped
    assert "transparent" in by_key["usr/share/alpha/photos/cutout.png"].dropped
    assert "palette" in by_key["usr/share/alpha/photos/palette.png"].dropped
    # Split by package, the test photo by key.
    assert {r.split for r in records if r.package == "beta"} == {"val"}
    assert by_key["usr/share/gamma/held.png"].split == "test" and by_key["usr/share/gamma/other.png"].split == "train"
    # Licences from the copyright file (last matching stanza), else the source's fallback.
    assert by_key["usr/share/alpha/photos/free/two.jpg"].licence == "CC0-1.0"
    assert by_key["usr/share/alpha/photos/one.png"].licence == "GPL-2+"
    assert by_key["usr/share/beta/base.png"].licence == "GPL-2+ (whole package)"
    # Downscaling: beta's rule gives factor 2 for the 640-wide photo.
    assert by_key["usr/share/beta/rescaled.png"].factor == 2 and by_key["usr/share/beta/rescaled.png"].size == (320, 288)
    assert by_key["usr/share/alpha/bg.edj!edje/images/1"].size == (800, 600)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["photos"]) == 8 and len(manifest["dropped"]) == len(records) - 8
    for photo in manifest["photos"]:
        written = out / photo["file"]
        assert written.parent.name == photo["split"]
        assert Image.open(written).size == tuple(photo["size"])
        assert photo["version"].startswith("1.") and photo["licence"] and len(photo["sha256"]) == 64
    assert manifest["summary"]["beta"]["val"]["photos"] == 2
    assert sorted(p.relative_to(out).parts[0] for p in out.rglob("*.png")) == ["test"] + ["train"] * 5 + ["val"] * 2


def test_corpus_rebuild_needs_force_and_leaves_no_stale_files(tmp_path: Path, cache: dict[str, Path]) -> None:
    out = tmp_path / "out"
    first = _build(out, tmp_path / "cache")
    stale = out / "train" / "stale.png"
    stale.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        _build(out, tmp_path / "cache")
    second = _build(out, tmp_path / "cache", overwrite=True)
    assert not stale.exists()
    assert [(r.key, r.sha256) for r in first] == [(r.key, r.sha256) for r in second]  # reproducible
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_corpus_avoid_and_missing_test_photo(tmp_path: Path, cache: dict[str, Path]) -> None:
    avoid = tmp_path / "independent"
    avoid.mkdir()
    _photo(9).resize((300, 270)).save(avoid / "lookalike.png")
    records = _build(tmp_path / "out", tmp_path / "cache", avoid=avoid)
    other = next(r for r in records if r.key.endswith("gamma/other.png"))
    assert "independent test set" in other.dropped
    with pytest.raises(InputError, match="test photos missing"):
        corpus.build_photo_corpus(
            tmp_path / "out2", tmp_path / "cache", sources=SOURCES[:2], test_keys=TEST, fetch=lambda p, c: packages.archive_in_cache(p, c)  # type: ignore[arg-type, return-value]
        )


def test_dhash_is_stable_under_rescaling_and_differs_between_photos() -> None:
    a, b = _photo(20), _photo(21)
    near = corpus.dhash(a) ^ corpus.dhash(a.resize((200, 180), Image.Resampling.LANCZOS))
    far = corpus.dhash(a) ^ corpus.dhash(b)
    assert near.bit_count() <= corpus.DHASH_DISTANCE < far.bit_count()


def test_real_source_table_is_consistent() -> None:
    from walloc_cli.data.corpus_sources import (
        PHOTO_SOURCES,
        TEST_KEYS,
        VALIDATION_PACKAGES,
    )

    names = [s.package.name for s in PHOTO_SOURCES]
    assert len(names) == len(set(names))
    assert VALIDATION_PACKAGES <= set(names)
    assert {k.split(":")[0] for k in TEST_KEYS} <= set(names) - VALIDATION_PACKAGES
    forbidden = {"plasma-workspace-wallpapers", "libjxl-testdata", "cimg-examples", "insighttoolkit5-examples", "dgsamples"}
    assert not forbidden & set(names)
    assert all(s.package.version for s in PHOTO_SOURCES if s.package.kind == "pypi")  # PyPI sources are pinned


# --- speech, music, volumes ---------------------------------------------------------------


def _wav(samples: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def _tone(seed: int, seconds: float, rate: int = 8000) -> np.ndarray:
    """A tone whose loudness wanders (so its envelope identifies it), int16 (frames, 1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    loudness = np.interp(t, np.linspace(0, seconds, 12), rng.uniform(0.05, 0.8, 12))
    return (np.sin(2 * np.pi * (200 + 50 * seed) * t) * loudness * 32767).astype(np.int16)[:, None]


def _media_cache(root: Path) -> Path:
    folder = root / "deb"
    folder.mkdir(parents=True)
    copyright = b"Files: *\nLicense: CC-BY-SA-3.0\n"
    make_deb(folder / "voice-a_1.0_all.deb", {
        "usr/share/voice/a/hello.wav": _wav(_tone(1, 1.0), 8000),
        "usr/share/voice/a/copy.wav": _wav(_tone(1, 1.0), 8000),  # the same samples: dropped
        "usr/share/voice/a/click.wav": _wav(_tone(2, 0.1), 8000),  # too short
        "usr/share/doc/voice-a/copyright": copyright,
    })
    make_deb(folder / "voice-b_2.0_all.deb", {"usr/share/voice/b/bye.wav": _wav(_tone(3, 2.0), 8000), "usr/share/doc/voice-b/copyright": copyright})
    make_deb(folder / "tunes_1.0_all.deb", {
        "usr/share/tunes/en/one.wav": _wav(_tone(4, 12.0, 16000), 16000),
        "usr/share/tunes/de/one.wav": _wav((_tone(4, 12.0, 16000) // 2).astype(np.int16), 16000),  # the same piece, quieter
        "usr/share/tunes/en/two.wav": _wav(_tone(5, 12.0, 16000), 16000),
    })
    return root


def test_media_sets_split_by_package_and_dedupe(tmp_path: Path) -> None:
    from walloc_cli.data import corpus_media

    cache = _media_cache(tmp_path / "cache")
    sources = (
        corpus_media.MediaSource("speech", packages.Package("voice-a", "deb"), ("usr/share/voice/a/*.wav",)),
        corpus_media.MediaSource("speech", packages.Package("voice-b", "deb"), ("usr/share/voice/b/*.wav",)),
        corpus_media.MediaSource("music", packages.Package("tunes", "deb"), ("usr/share/tunes/*.wav",), licence="GPL-2+"),
    )
    offline = packages.archive_in_cache
    speech = corpus_media.build_media_corpus("speech", tmp_path / "speech", cache, sources=sources, val_packages=frozenset({"voice-b"}), fetch=offline)  # type: ignore[arg-type]
    why = {r.key.rsplit("/", 1)[-1]: r.dropped for r in speech}
    assert why["copy.wav"] == "" and why["bye.wav"] == ""  # members are taken in name order
    assert why["hello.wav"] == "duplicate of voice-a:usr/share/voice/a/copy.wav" and why["click.wav"].startswith("shorter")
    assert {r.split for r in speech if r.package == "voice-b"} == {"val"}
    manifest = json.loads((tmp_path / "speech" / "manifest.json").read_text())
    assert [f["licence"] for f in manifest["files"]] == ["CC-BY-SA-3.0", "CC-BY-SA-3.0"]
    import soundfile as sf

    kept = next(r for r in speech if r.key.endswith("copy.wav"))
    assert np.array_equal(sf.read(tmp_path / "speech" / kept.file, dtype="int16", always_2d=True)[0], _tone(1, 1.0))  # lossless
    music = corpus_media.build_media_corpus("music", tmp_path / "music", cache, sources=sources, fetch=offline)  # type: ignore[arg-type]
    assert sorted(r.dropped.split(" ")[0] for r in music) == ["", "", "same"]
    assert all(r.licence == "GPL-2+" for r in music)


def test_volume_set_from_a_wheel(tmp_path: Path) -> None:
    nibabel = pytest.importorskip("nibabel")
    from walloc_cli.data import corpus_media

    volume = np.arange(4 * 5 * 6 * 2, dtype=np.int16).reshape(4, 5, 6, 2)  # X, Y, Z, time
    image = nibabel.Nifti1Image(volume, np.diag([1.0, 2.0, 3.0, 1.0]))
    (tmp_path / "pypi").mkdir()
    with zipfile.ZipFile(tmp_path / "pypi" / "scans-1.0-py3-none-any.whl", "w") as z:
        z.writestr("scans/data/head.nii", image.to_bytes())
    sources = (corpus_media.MediaSource("volume", packages.Package("scans", "pypi", "1.0"), ("scans/data/*.nii",), licence="MIT"),)
    (record,) = corpus_media.build_media_corpus("volume", tmp_path / "vol", tmp_path, sources=sources, fetch=packages.archive_in_cache)  # type: ignore[arg-type]
    assert record.shape == (6, 5, 4) and record.spacing == (3.0, 2.0, 1.0) and record.licence == "MIT"
    assert np.array_equal(np.load(tmp_path / "vol" / record.file), volume[..., 0].transpose(2, 1, 0))


def test_corpus_refuses_before_fetching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from walloc_cli.data import corpus_media

    (tmp_path / "c" / "music").mkdir(parents=True)
    (tmp_path / "c" / "music" / "manifest.json").write_text("{}")
    monkeypatch.setattr(packages.subprocess, "run", lambda *a, **k: pytest.fail("no download expected"))
    with pytest.raises(FileExistsError):
        corpus_media.build_corpus(tmp_path / "c", tmp_path / "cache")


def test_envelope_match() -> None:
    from walloc_cli.data.corpus_media import envelope, same_piece

    a, b = _tone(7, 10.0), _tone(8, 10.0)
    assert same_piece(envelope(a, 8000), envelope((a // 3).astype(np.int16), 8000))
    assert not same_piece(envelope(a, 8000), envelope(b, 8000))
    assert not same_piece(envelope(a, 8000), envelope(a[:40000], 8000))  # lengths differ
