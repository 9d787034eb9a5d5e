"""Export a training checkpoint as a shipped model: inference weights + JSON card.

    python scripts/export_model.py CHECKPOINT CONFIG.toml [--out models] [--effort 4] [--note TEXT]

The card records the codec config, SHA-256 of the weights, the run config that trained it
(``configs/*.toml``), the steps actually taken, the hardware, the validation history and the
quantisation-step range it was trained for. Rate/PSNR on the held-out test photos and the
model's place on the quality scale are added by ``scripts/build_quality_map.py``.

``walloc train`` exports the same way by itself; this script exists for checkpoints of runs
that were started from Python (background runs) rather than from the command line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from walloc_cli.model.network import WallocCodec
from walloc_cli.model.zoo import export_model
from walloc_cli.train.run import card_extras, read_run_config
from walloc_cli.train.loop import hardware_description, load_checkpoint

DATA = (
    "real photos built by `walloc data photos` from Debian lomiri-wallpapers-16.04, mate-backgrounds, "
    "opencv-doc and the scikit-image wheel, downscaled 2-4x with Lanczos; split fixed in walloc_cli/data/photos.py"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--effort", type=int, default=4, help="default lossless WebP effort of the payload (bench/payload_effort.py)")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    run = read_run_config(args.config)
    meta = json.loads(args.checkpoint.with_name(args.checkpoint.name + ".json").read_text())
    model = WallocCodec(run.codec)
    load_checkpoint(args.checkpoint, model, None)
    train_files = sorted(p.name for p in Path(run.train_data).iterdir() if p.is_file())
    data = {"description": DATA, "train": f"data/photos/train ({len(train_files)} photos)", "val": "data/photos/val", "train_files": train_files}
    extra = card_extras(run, meta, hardware_description("cpu", run.train.threads) + "; no GPU was available", data)
    extra["training"]["run_config"] |= {"train_data": "data/photos/train", "val_data": "data/photos/val"}
    extra["training"]["run_config_file"] = str(args.config)
    if args.note:
        extra["training"]["note"] = args.note
    extra["payload_effort"] = args.effort
    extra["results"] = {}  # scripts/build_quality_map.py measures shipped models on the test photos
    card = export_model(model, args.out, run.name, run.modality, extra)
    print(f"exported {card.name} ({card.sha256[:12]}) to {card.weights}")


if __name__ == "__main__":
    main()
