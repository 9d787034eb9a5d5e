"""sRGB ICC profiles as a header flag (format 1.3): ``image.icc = "srgb"`` instead of an ICCP chunk.

An ICC profile that is sRGB by its content (colorants, white point, tone curves: any of the many
variants photos carry) is stored as one word and written back as walloc's standard sRGB profile
(:data:`walloc_cli.files.icc.SRGB_PROFILE`); every other profile keeps its bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from icc_profiles import (
    ADOBE_COLORANTS,
    D50,
    SRGB_COLORANTS,
    curve_table,
    gamma_curve,
    p3_like_profile,
    para_curve,
    rgb_profile,
    srgb_table,
)
from walloc_cli.api.files import compress_file, decompress_file, describe
from walloc_cli.cli.app import app
from walloc_cli.codecs.image import decode_image, encode_image
from walloc_cli.errors import FormatError
from walloc_cli.files.icc import SRGB_PROFILE, is_srgb
from walloc_cli.files.images import image_from_array, read_image
from walloc_cli.format.container import Chunk, WlcWriter, loads, wlc_version


@pytest.fixture(autouse=True)
def _format_1() -> Iterator[None]:
    """These tests are of the 1.x writer's minor versions (1.3 for this feature): write 1.x."""
    with wlc_version(1):
        yield

REFERENCE = Path(__file__).resolve().parent.parent / "formats" / "reference"

# sRGB, however it is written: v2 with a 1024- or 4096-entry curve table and a D65 white, v4 with
# the parametric curve and a D50 white, LittleCMS's own (what Pillow writes), walloc's.
SRGB_VARIANTS = {
    "v2-table-1024-d65": rgb_profile(),
    "v2-table-4096-d65": rgb_profile(curve=curve_table(srgb_table(4096))),
    "v4-para-d50": rgb_profile(white=D50, curve=para_curve(), version=4),
    "named-otherwise": rgb_profile(name="c2"),
    "pillow": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    "walloc": SRGB_PROFILE,
}
# Not sRGB, though some look like it or say they are: kept as bytes.
NOT_SRGB = {
    "display-p3": p3_like_profile(),
    "adobe-rgb": rgb_profile(ADOBE_COLORANTS, curve=gamma_curve(2.2), name="Adobe RGB (1998)"),
    "srgb-primaries-gamma-2.2": rgb_profile(curve=gamma_curve(2.2), name="sRGB"),
    "srgb-primaries-linear": rgb_profile(curve=gamma_curve(1.0), name="sRGB linear"),
    "srgb-primaries-rec709-curve": rgb_profile(curve=para_curve((1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081)), name="sRGB"),
    "srgb-curve-d2700-white": rgb_profile(white=(1.1, 1.0, 0.3), name="sRGB"),
    "swapped-colorants": rgb_profile((SRGB_COLORANTS[1], SRGB_COLORANTS[2], SRGB_COLORANTS[0]), name="sRGB"),
    "with-lut": rgb_profile(name="sRGB", extra={b"A2B0": b"mft2" + bytes(60)}),
    "truncated": rgb_profile()[:300],
    "gray": rgb_profile()[:16] + b"GRAY" + rgb_profile()[20:],
    "not-a-profile": b"\x00" * 200,
}
# sRGB profiles a Debian system may carry (icc-profiles-free, colord-data): tested when present.
SYSTEM_SRGB = [Path("/usr/share/color/icc/sRGB.icc"), Path("/usr/share/color/icc/colord/sRGB.icc")]


def photo(height: int = 24, width: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width] / 8.0
    return np.rint(np.stack([0.5 + 0.3 * np.sin(x + 1.3 * y + k) for k in range(3)], -1) * 255).astype(np.uint8)


def tagged(icc: bytes | None):  # type: ignore[no-untyped-def]
    image = image_from_array(photo())
    image.icc_profile = icc
    return image


@pytest.mark.parametrize("name", sorted(SRGB_VARIANTS))
def test_srgb_variants_are_recognised(name: str) -> None:
    assert is_srgb(SRGB_VARIANTS[name])


@pytest.mark.parametrize("name", sorted(NOT_SRGB))
def test_other_profiles_are_not_srgb(name: str) -> None:
    assert not is_srgb(NOT_SRGB[name])


def test_damaged_profiles_never_raise() -> None:
    """Any byte of a profile may be wrong (files come from anywhere): the answer is True or
    False, never an exception or a warning."""
    import warnings

    rng = np.random.default_rng(5)
    base = bytearray(SRGB_VARIANTS["v4-para-d50"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(400):
            damaged = bytearray(base)
            for at in rng.integers(0, len(damaged), rng.integers(1, 6)):
                damaged[at] = int(rng.integers(0, 256))
            assert is_srgb(bytes(damaged)) in (True, False)
        hostile = rgb_profile(curve=para_curve((-3.0,)))  # 0 ** -3
        assert not is_srgb(hostile)


def test_no_profile_is_not_srgb() -> None:
    assert not is_srgb(None) and not is_srgb(b"")


@pytest.mark.parametrize("path", SYSTEM_SRGB, ids=lambda p: str(p))
def test_system_srgb_profiles_are_recognised(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not installed")
    assert is_srgb(path.read_bytes())


def _through(profile: bytes, grid: np.ndarray) -> np.ndarray:
    """``grid`` (N, 1, 3) uint8 converted by LittleCMS from ``profile`` to walloc's sRGB."""
    image = Image.fromarray(grid, "RGB")
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    target = ImageCms.ImageCmsProfile(io.BytesIO(SRGB_PROFILE))
    return np.asarray(ImageCms.profileToProfile(image, source, target, outputMode="RGB"))


def test_a_colour_managed_reader_sees_the_same_colours_with_the_standard_profile() -> None:
    """What the flag promises: every profile it replaces gives the colours walloc's standard sRGB
    profile gives, to within one 8-bit level (LittleCMS); the look-alikes it keeps do not."""
    levels = np.arange(0, 256, 15, dtype=np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels), -1).reshape(-1, 1, 3)
    for name, profile in SRGB_VARIANTS.items():
        assert np.abs(_through(profile, grid).astype(int) - grid).max() <= 1, name
    for name in ("display-p3", "adobe-rgb", "srgb-primaries-gamma-2.2", "srgb-primaries-rec709-curve"):
        assert np.abs(_through(NOT_SRGB[name], grid).astype(int) - grid).max() > 3, name


def test_the_standard_profile_is_valid_and_fixed() -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(SRGB_PROFILE))
    assert "sRGB" in ImageCms.getProfileDescription(profile)
    assert len(SRGB_PROFILE) == 588 and SRGB_PROFILE[36:40] == b"acsp"


@pytest.mark.parametrize("name", ["v2-table-1024-d65", "v4-para-d50", "pillow"])
def test_an_srgb_profile_is_a_flag_and_comes_back_as_the_standard_one(name: str) -> None:
    data = encode_image(tagged(SRGB_VARIANTS[name]), model="rgb-16x-v")
    header, chunks = loads(data)
    assert header["image"]["icc"] == "srgb" and data[8:10] == b"\x01\x03"
    assert "ICCP" not in [chunk.type for chunk in chunks]
    assert decode_image(data).icc_profile == SRGB_PROFILE


def test_the_flag_saves_the_profile_bytes() -> None:
    kept = encode_image(tagged(NOT_SRGB["display-p3"]), model="rgb-16x-v")
    flagged = encode_image(tagged(SRGB_VARIANTS["v2-table-1024-d65"]), model="rgb-16x-v")
    bare = encode_image(tagged(None), model="rgb-16x-v")
    assert len(flagged) - len(bare) == len(',"icc":"srgb"')  # the flag is all it costs
    assert len(kept) - len(bare) > 12 + 100  # an ICCP chunk: framing and the deflated profile


@pytest.mark.parametrize("name", ["display-p3", "adobe-rgb", "srgb-primaries-gamma-2.2"])
def test_other_profiles_keep_their_bytes(name: str) -> None:
    data = encode_image(tagged(NOT_SRGB[name]), model="rgb-16x-v")
    header, chunks = loads(data)
    assert "icc" not in header["image"] and data[8:10] == b"\x01\x00"
    assert zlib.decompress(next(c.data for c in chunks if c.type == "ICCP")) == NOT_SRGB[name]
    assert decode_image(data).icc_profile == NOT_SRGB[name]


def test_metadata_option_keeps_the_flag_with_icc_and_drops_it_without(tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(photo()).save(source, icc_profile=SRGB_VARIANTS["v4-para-d50"])
    compress_file(source, tmp_path / "icc.wlc", metadata="icc", measure=False, wlc_version=1)
    compress_file(source, tmp_path / "none.wlc", metadata="none", measure=False, wlc_version=1)
    assert loads((tmp_path / "icc.wlc").read_bytes())[0]["image"]["icc"] == "srgb"
    assert "icc" not in loads((tmp_path / "none.wlc").read_bytes())[0]["image"]
    assert describe(tmp_path / "icc.wlc")["metadata"] == ["icc"] and describe(tmp_path / "none.wlc")["metadata"] == []
    for ext in (".png", ".jpg", ".webp", ".tif"):
        decompress_file(tmp_path / "icc.wlc", tmp_path / f"out{ext}")
        assert read_image(tmp_path / f"out{ext}").icc_profile == SRGB_PROFILE, ext
    decompress_file(tmp_path / "none.wlc", tmp_path / "bare.png")
    assert read_image(tmp_path / "bare.png").icc_profile is None


def test_info_says_the_profile_is_an_srgb_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    (tmp_path / "a.wlc").write_bytes(encode_image(tagged(SRGB_VARIANTS["pillow"]), model="rgb-16x-v"))
    result = CliRunner().invoke(app, ["info", str(tmp_path / "a.wlc")])
    assert result.exit_code == 0, result.output
    assert "metadata  icc (sRGB, as a flag)" in result.output and "v1.3" in result.output


def _rewritten(data: bytes, edit_header=None, extra: list[Chunk] | None = None) -> bytes:  # type: ignore[no-untyped-def]
    header, chunks = loads(data)
    if edit_header:
        edit_header(header)
    buffer = io.BytesIO()
    with WlcWriter(buffer, header, minor=data[9]) as writer:
        for chunk in chunks + (extra or []):
            writer.write_chunk(chunk)
    return buffer.getvalue()


def test_an_unknown_icc_flag_is_refused() -> None:
    data = encode_image(tagged(SRGB_VARIANTS["pillow"]), model="rgb-16x-v")
    crafted = _rewritten(data, lambda header: header["image"].update(icc="display-p3"))
    with pytest.raises(FormatError, match="invalid header: icc='display-p3' is not one of srgb"):
        decode_image(crafted)


def test_a_flag_and_an_iccp_chunk_together_are_refused() -> None:
    data = encode_image(tagged(SRGB_VARIANTS["pillow"]), model="rgb-16x-v")
    crafted = _rewritten(data, extra=[Chunk("ICCP", zlib.compress(NOT_SRGB["display-p3"]))])
    with pytest.raises(FormatError, match="ICCP chunk is present but the header declares none"):
        decode_image(crafted)


def test_srgb_reference_file() -> None:
    """formats/reference: a 1.3 file flagged sRGB (its source carries LittleCMS's sRGB profile,
    another sRGB's bytes) decodes to the recorded pixels with the standard profile."""
    name = "rgb-16x-v-srgb-flag-24x16"
    data = (REFERENCE / f"{name}.wlc").read_bytes()
    header, chunks = loads(data)
    assert data[8:10] == b"\x01\x03" and header["image"]["icc"] == "srgb" and [c.type for c in chunks] == ["LATN"]
    source = read_image(REFERENCE / f"{name}.src.png")
    assert is_srgb(source.icc_profile) and source.icc_profile != SRGB_PROFILE
    decoded = decode_image(data)
    expected = read_image(REFERENCE / f"{name}.out.png")
    assert decoded.icc_profile == expected.icc_profile == SRGB_PROFILE
    assert np.array_equal(decoded.pixels, expected.pixels)
    # the encoder writes the same header again (only the encoder string may differ)
    again = loads(encode_image(source, model="rgb-16x-v", step=1.0))[0]
    assert {**again, "encoder": header["encoder"]} == header


def test_an_old_reader_decodes_the_flagged_file_without_a_profile() -> None:
    """A 1.0-1.2 reader ignores the unknown key image.icc: it writes the picture untagged, which
    colour-managed viewers show as sRGB (the web's and most viewers' default)."""
    from walloc_cli.codecs.image import synthesize_image
    from walloc_cli.format.payload import decode_planes
    from walloc_cli.model.zoo import load_model

    data = encode_image(tagged(SRGB_VARIANTS["pillow"]), model="rgb-16x-v")
    header, chunks = loads(data)
    del header["image"]["icc"]  # what a reader that does not know the key sees
    codec, _ = load_model("rgb-16x-v")
    q = decode_planes([c.data for c in chunks if c.type == "LATN"], tuple(header["latent"]["shape"]), header["latent"]["bits"], "webp")
    old = synthesize_image(codec, q, header, {})
    assert old.icc_profile is None
    np.testing.assert_array_equal(old.pixels, decode_image(data).pixels)
