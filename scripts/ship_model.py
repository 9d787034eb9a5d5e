"""Ship a model that ``walloc train`` exported: copy it into ``models/`` with a quality stanza.

The model takes the stretch ``--q LO HI`` of its family's quality scale (default all of 0..100),
from ``--coarsest`` at LO (default: its largest trained step) to ``--finest`` at HI (default: its
smallest trained step; pick it larger where the validation points show PSNR no longer rising, so
that q does not buy rate for nothing). Hand-overs between the models of a family are chosen from
their validation points (where the next model gives at least the rate and PSNR of the previous
one); ``walloc_cli.model.quality.monotone_setting`` guards each image at run time. Data paths in the
card are made relative to the repository. The image ladders were laid out by
``scripts/build_quality_map.py`` from measured curves of many photos.

    python scripts/ship_model.py runs/out/ms-3d-8x-v.json multispectral --q 0 28 --finest 2
    python scripts/ship_model.py runs/out/ms-3d-2x-v.json multispectral --q 28 100 --coarsest 3.5

A successor takes a shipped model's place on every scale it serves with ``--replaces OLD``: the
new card gets OLD's quality stanzas (same q stretches and steps, so q keeps meaning the step it
meant) and OLD's card loses them, OLD staying installed so its files decode. ``--name`` ships the
run under a model name of its own (weights renamed to match):

    python scripts/ship_model.py runs/corpus-rgb-4x-v-long.json rgb --name rgb-4x-v2 --replaces rgb-4x-v
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def relative(path: str) -> str:
    """A path inside the repository, written relative to it (``configs/../data`` -> ``data``)."""
    for prefix in (str(ROOT / "configs") + "/../", str(ROOT) + "/"):
        path = path.replace(prefix, "")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card", type=Path, help="the NAME.json that walloc train wrote (NAME.safetensors beside it)")
    parser.add_argument("family", help="quality family: volume, multispectral, speech8k, ...")
    parser.add_argument("--q", type=float, nargs=2, default=[0.0, 100.0], metavar=("LO", "HI"), help="the stretch of the quality scale this model takes")
    parser.add_argument("--coarsest", type=float, default=None, help="step at LO (default: the largest trained step)")
    parser.add_argument("--finest", type=float, default=None, help="step at HI (default: the smallest trained step)")
    parser.add_argument("--effort", type=int, default=4, help="default lossless WebP effort of the payload")
    parser.add_argument("--name", help="ship under this model name (default: the run's name)")
    parser.add_argument("--replaces", metavar="OLD", help="take shipped model OLD's quality stanzas (--q, --coarsest, --finest unused)")
    args = parser.parse_args()
    card = json.loads(args.card.read_text())
    weights = args.card.with_name(card["weights"])
    if args.name:
        card["name"], card["weights"] = args.name, f"{args.name}.safetensors"
    steps = card["steps"]
    lo, hi = (int(q) if q == int(q) else q for q in args.q)
    card["quality"] = [{"family": args.family, "q": [lo, hi], "step": [args.coarsest or steps["max"], args.finest or steps["min"]]}]
    if args.replaces:
        old_path = ROOT / "models" / f"{args.replaces}.json"
        old = json.loads(old_path.read_text())
        card["quality"] = old.pop("quality")
        old_path.write_text(json.dumps(old, indent=2) + "\n")
    card["payload_effort"] = args.effort
    data = card["training"]["data"]
    data["train"] = ",".join(relative(p) for p in data["train"].split(","))
    data["val"] = ",".join(relative(p) for p in (data.get("val") or "").split(",")) or None
    card["results"]["set"] = relative(card["results"]["set"])
    card["training"]["checkpoint"] = relative(card["training"].get("checkpoint", ""))
    run = card["training"]["run_config"]
    run["train_data"] = ",".join(relative(p) for p in run["train_data"].split(","))
    run["val_data"] = ",".join(relative(p) for p in run["val_data"].split(","))
    shutil.copy(weights, ROOT / "models" / card["weights"])
    (ROOT / "models" / card["weights"]).chmod(0o644)
    (ROOT / "models" / f"{card['name']}.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"shipped {card['name']}: " + "; ".join(f"{q['family']} q {q['q'][0]}..{q['q'][1]} = step {q['step']}" for q in card["quality"]))


if __name__ == "__main__":
    main()
