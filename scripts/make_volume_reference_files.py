"""Write the reference volume ``.wlc`` files in ``formats/reference/volume/`` (kept forever; only
new cases are added). Each case: ``NAME.src.npy`` (the input: a crop of the held-out test
volumes of ``walloc data volumes``), ``NAME.wlc`` and ``NAME.out.npy`` (what this walloc
decoded; tests allow a difference of 1 in the last place of float rounding on another CPU).

    python scripts/make_volume_reference_files.py
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from walloc_cli.format.container import WlcReader, wlc_version
from walloc_cli.codecs.volume import compress_volume, decode_volume
from walloc_cli.files.volumes import volume_from_array

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "formats" / "reference" / "volume"
DATA = ROOT / "data" / "volumes"


def cases() -> dict[str, tuple[np.ndarray, str, float]]:
    """Every case (the held-out volumes are loaded only when present: the cases written from
    them are kept in the repository, and newer cases may start from their sources)."""
    ct_path, ms_path = DATA / "ct" / "test" / "cranium_z076-107.npy", DATA / "ms" / "test" / "wv2_vnir.npy"
    kept = {
        # format 1.3, tight latent bits: q 90 is ms-3d-2x-v at step 0.388, 10-bit indices; these fit 8
        "ms-uint16-tight-bits-8x40x48": (np.load(OUT / "ms-uint16-8x48x56.src.npy")[:, 4:44, 4:52], "CYX", 90.0),
        # format 1.3: the jxl payload, two tiles along the rows (136 > 128 voxels)
        "ct-int16-jxl-20x136x40": (np.load(OUT / "ct-int16-20x136x40.src.npy"), "ZYX", 50.0),
        # format 2.0: the compact header and framing, two tiles as above
        "wlc2-ct-int16-20x136x40": (np.load(OUT / "ct-int16-20x136x40.src.npy"), "ZYX", 50.0),
        # format 2.1, latent.split: each tile's low-pass group in images of its own
        "wlc21-ct-int16-20x136x40": (np.load(OUT / "ct-int16-20x136x40.src.npy"), "ZYX", 50.0),
        # format 2.2: the ctx payload, two tiles as above
        "wlc22-ct-int16-20x136x40": (np.load(OUT / "ct-int16-20x136x40.src.npy"), "ZYX", 50.0),
    }
    if not (ct_path.exists() and ms_path.exists()):
        return kept
    ct = np.load(ct_path)
    ms = np.load(ms_path)
    return kept | {
        # int16 HU, two tiles along the rows (136 > 128 voxels), the CT/MRI 8x model at q 50
        "ct-int16-20x136x40": (ct[6:26, 60:196, 100:140], "ZYX", 50.0),
        # 8 bands first, uint16, the multispectral 8x model at q 90 (before the 2x model shipped)
        "ms-uint16-8x48x56": (ms[:, 200:248, 300:356], "CYX", 90.0),
        # the 2x models (the high-quality end of each scale since they shipped)
        "ct-2x-int16-12x40x72": (ct[10:22, 100:140, 60:132], "ZYX", 80.0),
        "ms-2x-uint16-8x40x40": (ms[:, 100:140, 100:140], "CYX", 60.0),
    }


PAYLOADS = {"ct-int16-jxl-20x136x40": "jxl", "wlc22-ct-int16-20x136x40": "ctx"}  # the cases not coded with webp
WLC2 = {"wlc2-ct-int16-20x136x40", "wlc21-ct-int16-20x136x40", "wlc22-ct-int16-20x136x40"}  # the cases written as format 2.x (2.0-2.2; the others: 1.x)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = json.loads((OUT / "index.json").read_text()) if (OUT / "index.json").exists() else {}
    for name, (array, axes, quality) in cases().items():
        if name in index:
            continue  # written once, kept forever
        array = np.ascontiguousarray(array)
        np.save(OUT / f"{name}.src.npy", array)
        buffer = io.BytesIO()
        with wlc_version(2 if name in WLC2 else 1):
            report = compress_volume(volume_from_array(array, axes), buffer, quality=quality, payload=PAYLOADS.get(name, "webp"), measure=False)
        (OUT / f"{name}.wlc").write_bytes(buffer.getvalue())
        decoded = decode_volume(WlcReader(io.BytesIO(buffer.getvalue())))
        np.save(OUT / f"{name}.out.npy", decoded.array)
        index[name] = {"model": report.model, "quality": quality, "payload": PAYLOADS.get(name, "webp"), "bytes": len(buffer.getvalue()), **({"wlc_version": 2} if name in WLC2 else {})}
        print(f"{name}: {len(buffer.getvalue())} bytes, {report.model} step {report.step}")
    (OUT / "index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
