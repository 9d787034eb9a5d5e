"""Write the reference ``.wlc`` files in ``formats/reference/`` that tests must keep decoding.

Run when a new model ships: existing cases are never rewritten (they are the compatibility
promise; a test that fails on them is a broken decoder, not a stale file), only new cases are
added. Each case writes:

* ``NAME.src.png``  the input image (tiny; crops of the shipped sample photo or synthetic),
* ``NAME.wlc``      the compressed file,
* ``NAME.out.png``  what this walloc decoded from it (tests allow +-1 for float rounding).

    python scripts/make_reference_files.py
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from PIL import Image

from walloc_cli.codecs.image import decode_image, encode_image
from walloc_cli.files.images import ImageData, image_from_array, read_image, write_image
from walloc_cli.format.container import wlc_version

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "formats" / "reference"


def tagged(image: ImageData) -> ImageData:
    """``image`` with the EXIF and XMP blocks of a phone photo stored sideways (orientation 6):
    the reference for format 1.2's ``exif`` and ``xmp `` chunks and for upright storage."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = "walloc reference"  # Make
    exif[0x0132] = "2026:12:05 09:00:00"  # DateTime
    exif.get_ifd(0x8769)[0x829A] = 1 / 125  # ExposureTime
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    )
    return dataclasses.replace(image, exif=exif.tobytes()[6:], xmp=xmp)  # no "Exif\0\0" prefix


def srgb_tagged(image: ImageData) -> ImageData:
    """``image`` with an sRGB profile that is not walloc's own (LittleCMS's, with the date it was
    made): the reference for format 1.3's ``image.icc = "srgb"`` flag, which decodes to
    :data:`walloc_cli.files.icc.SRGB_PROFILE`."""
    from PIL import ImageCms

    return dataclasses.replace(image, icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def cases() -> dict[str, tuple[ImageData, dict[str, str]]]:
    photo = np.asarray(Image.open(ROOT / "samples" / "photo.png").convert("RGB"))
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:9, 0:17]
    alpha = (np.clip(xx * 16 + yy * 8, 0, 255)).astype(np.uint8)
    rgba = np.dstack([photo[100:109, 200:217], alpha])
    crop_256 = image_from_array(photo[20:276, 100:356].copy())  # the 2.1/2.2 cases' crop (never modified)
    gray = np.asarray(Image.open(ROOT / "samples" / "photo.png").convert("L"))
    gray16 = (gray[150:169, 300:323].astype(np.uint16) * 257 + rng.integers(0, 200, (19, 23))).astype(np.uint16)
    return {
        "rgb-16x-48x40": (image_from_array(photo[120:160, 180:228].copy()), {"model": "rgb-16x", "payload": "webp"}),
        "rgb-4x-png-33x21": (image_from_array(photo[60:81, 90:123].copy()), {"model": "rgb-4x", "payload": "png"}),
        "rgba-17x9": (image_from_array(rgba), {"model": "rgb-16x", "payload": "webp"}),
        "gray16-23x19": (image_from_array(gray16), {"model": "rgb-16x", "payload": "webp"}),
        "gray-1x1": (image_from_array(np.array([[77]], dtype=np.uint8)), {"model": "rgb-16x", "payload": "webp"}),
        # variable-rate models: stored indices at a step other than 1 (2x at 0.4: 9-bit indices,
        # two byte planes), and the gray model, on a gray image and on an RGB file with equal planes
        "rgb-16x-v-step2.5-40x32": (image_from_array(photo[200:232, 40:80].copy()), {"model": "rgb-16x-v", "payload": "webp", "step": 2.5}),
        "rgb-4x-v-step0.8-png-28x20": (image_from_array(photo[250:270, 400:428].copy()), {"model": "rgb-4x-v", "payload": "png", "step": 0.8}),
        "rgb-2x-v-step0.4-24x24": (image_from_array(photo[30:54, 300:324].copy()), {"model": "rgb-2x-v", "payload": "webp", "step": 0.4}),
        "gray-16x-v-31x27": (image_from_array(gray[10:37, 60:91].copy()), {"model": "gray-16x-v", "payload": "png", "step": 1.5}),
        "gray-as-rgb-16x-v-16x16": (image_from_array(np.repeat(gray[200:216, 100:116, None], 3, axis=2)), {"model": "gray-16x-v", "payload": "webp", "step": 1.0}),
        # format 1.2: exif and xmp chunks; the source is stored 20 wide x 12 high with
        # orientation 6, so the file (and its output) hold the upright 12 x 20 picture
        "rgb-16x-v-exif-xmp-orient6-20x12": (tagged(image_from_array(photo[140:152, 320:340].copy())), {"model": "rgb-16x-v", "payload": "webp", "step": 1.0}),
        # format 1.3: an sRGB profile stored as the header flag image.icc (no ICCP chunk), and
        # tight latent bits (rgb-2x-v at step 0.354, q 95, has 10-bit indices; this crop's fit 8)
        "rgb-16x-v-srgb-flag-24x16": (srgb_tagged(image_from_array(photo[200:216, 300:324].copy())), {"model": "rgb-16x-v", "payload": "webp", "step": 1.0}),
        "rgb-2x-v-step0.354-tight-bits-32x24": (image_from_array(photo[80:104, 250:282].copy()), {"model": "rgb-2x-v", "payload": "webp", "step": 0.354}),
        # format 1.3: the jxl payload (48 latent channels in one planar JPEG XL image)
        "rgb-4x-v-jxl-40x32": (image_from_array(photo[160:192, 240:280].copy()), {"model": "rgb-4x-v", "payload": "jxl", "step": 1.5}),
        # format 2.0, the compact header: an sRGB photo without alpha (the worked example of
        # formats/wlc.md), an alpha plane, 16-bit samples
        "wlc2-rgb-16x-v-srgb-16x16": (srgb_tagged(image_from_array(photo[220:236, 330:346].copy())), {"model": "rgb-16x-v", "payload": "webp", "step": 2.5, "wlc_version": 2}),
        "wlc2-rgba-17x9": (image_from_array(rgba), {"model": "rgb-16x", "payload": "webp", "wlc_version": 2}),
        "wlc2-gray16-23x19": (image_from_array(gray16), {"model": "rgb-16x", "payload": "webp", "wlc_version": 2}),
        # format 2.1, latent.split: the low-pass channel group in chunks of its own (written for
        # latents of 1024 positions or more: photos from 256 x 256), webp and png payloads
        "wlc21-rgb-4x-v-256x256": (crop_256, {"model": "rgb-4x-v", "payload": "webp", "step": 1.5, "wlc_version": 2}),
        "wlc21-gray-16x-v-png-264x256": (image_from_array(gray[30:286, 150:414].copy()), {"model": "gray-16x-v", "payload": "png", "step": 1.5, "wlc_version": 2}),
        # format 2.2: the ctx payload (48 latent channels, one LATN chunk; the same crop as 2.1's)
        "wlc22-rgb-4x-v-256x256": (crop_256, {"model": "rgb-4x-v", "payload": "ctx", "step": 1.5, "wlc_version": 2}),
        # ... and a gray photo through the gray ladder's model (12 channels)
        "wlc22-gray-16x-v-264x256": (image_from_array(gray[30:286, 150:414].copy()), {"model": "gray-16x-v", "payload": "ctx", "step": 1.5, "wlc_version": 2}),
        # rgb-4x-v2 (issue 18: rgb-4x-v's recipe on the package corpus, 60,000 steps), which took
        # over rgb-4x-v's stretch of the rgb and gray ladders: the same crop as 2.1's, webp
        "wlc21-rgb-4x-v2-256x256": (crop_256, {"model": "rgb-4x-v2", "payload": "webp", "step": 1.5, "wlc_version": 2}),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = json.loads((OUT / "index.json").read_text()) if (OUT / "index.json").exists() else {}
    for name, (image, options) in cases().items():
        if name in index:
            continue  # written once, kept forever
        write_image(OUT / f"{name}.src.png", image, overwrite=True)
        source = read_image(OUT / f"{name}.src.png")
        with wlc_version(int(options.get("wlc_version", 1))):  # the cases before 2.0 were 1.x
            data = encode_image(source, model=options["model"], payload=options["payload"], step=float(options.get("step", 1.0)))
        (OUT / f"{name}.wlc").write_bytes(data)
        write_image(OUT / f"{name}.out.png", decode_image(data), overwrite=True)
        index[name] = {**options, "bytes": len(data)}
        print(f"{name}: {len(data)} bytes")
    (OUT / "index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
