"""Ship a model that ``walloc train`` exported: copy it into ``models/`` with a quality stanza.

For a family served by one variable-rate model (volumes, 8 kHz speech), the model spans the whole
0..100 quality scale, from its largest trained step at q 0 to ``--finest`` at q 100 (default: its
smallest trained step; pick it larger where the validation points show PSNR no longer rising,
so that q does not buy rate for nothing). Data paths in the card are made relative to the
repository. Image ladders of several models are laid out by ``scripts/build_quality_map.py``.

    python scripts/ship_model.py runs/out/ms-3d-8x-v.json multispectral --finest 0.7
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
    parser.add_argument("--finest", type=float, default=None, help="step at q 100 (default: the smallest trained step)")
    parser.add_argument("--effort", type=int, default=4, help="default lossless WebP effort of the payload")
    args = parser.parse_args()
    card = json.loads(args.card.read_text())
    steps = card["steps"]
    card["quality"] = [{"family": args.family, "q": [0, 100], "step": [steps["max"], args.finest or steps["min"]]}]
    card["payload_effort"] = args.effort
    data = card["training"]["data"]
    data["train"] = ",".join(relative(p) for p in data["train"].split(","))
    data["val"] = ",".join(relative(p) for p in (data.get("val") or "").split(",")) or None
    card["results"]["set"] = relative(card["results"]["set"])
    card["training"]["checkpoint"] = relative(card["training"].get("checkpoint", ""))
    run = card["training"]["run_config"]
    run["train_data"] = ",".join(relative(p) for p in run["train_data"].split(","))
    run["val_data"] = ",".join(relative(p) for p in run["val_data"].split(","))
    weights = args.card.with_name(card["weights"])
    shutil.copy(weights, ROOT / "models" / card["weights"])
    (ROOT / "models" / card["weights"]).chmod(0o644)
    (ROOT / "models" / f"{card['name']}.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"shipped {card['name']} as family {args.family}: q 0..100 = step {card['quality'][0]['step']}")


if __name__ == "__main__":
    main()
