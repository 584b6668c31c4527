"""Serving settings for items without training ratings, chosen on a validation cut.

    .venv/bin/python benchmarks/cold_item_validation.py --train-only [--dataset ml-100k]
    .venv/bin/python benchmarks/cold_item_validation.py --weights DIR --grid '[{}, ...]'
        [--map-text-only]

text_encoder.py's cold protocol measures on the test split; nothing may be chosen
there. Here the test split is dropped (quality_data.holdout_split: the latest 20%
of each user's training ratings become the validation ratings) and a different
10% of the rated items (cold draw --seed, default 1; the test protocol's is 0)
lose their training ratings. The joint model with MiniLM text (ModelConfig
defaults, the split protocol's overrides) trains once, its weights are kept, and
for each setting of --grid (ModelConfig serving overrides) the same weights are
re-exported in process (build_model + restore_weights + ServingModule, the full
catalogue and the text vectors, as `mtrec add-items` does), and `recommend` is
measured: cold-item, warm-item and arrived-item (no training ratings, not
drawn: text_encoder_metrics.row_groups) HR@10/50/100 as served and NDCG@10 over
all validation ratings. Prints one row per setting and writes --out (JSON) and the
same table as markdown beside it (.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import tensorflow as tf

from mtrec.components.text_encoder.config import TextEncoderConfig
from mtrec.contracts import signatures as S
from mtrec.data import clean, load_dataset
from mtrec.models import evaluation as E
from mtrec.models.config import ModelConfig
from mtrec.models.item_text import ItemText
from mtrec.models.serving_module import ServingModule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import (
    Prepared,
    default_data_path,
    holdout_split,
    prepare_dataset,
    with_protocol,
)
from served_metrics import batched
from serving_sweep import rebuilt, train_weights
from text_encoder import encode_catalog, hold_out_items
from text_encoder_metrics import KS, TOP, row_groups

REPO = Path(__file__).resolve().parents[1]
# The test protocols' splits: ml-latest-small per-user time, ML-100K u1 (random).
LABELS = {"ml-latest-small": "ml-latest-small_time_holdout", "ml-100k": "ml-100k_u1_holdout"}


def validation_data(data: str, work_root: Path, seed: int, source: str = "ml-latest-small"
                    ) -> tuple[Prepared, Path, set[str]]:
    """The validation cut with its own cold draw, prepared (cached under work_root)."""
    split = "u1" if source == "ml-100k" else None
    dataset = holdout_split(clean(load_dataset(source, data, split)).dataset)
    cold_dataset, cold = hold_out_items(dataset, 0.1, seed)
    prepared, work = prepare_dataset(cold_dataset, f"{LABELS[source]}_cold{seed}", work_root)
    return prepared, work, cold


def served_metrics(module: ServingModule, prepared: Prepared, cold: set[str]) -> dict:
    truth = prepared.truth()
    items = batched(module.recommend, truth.users, k=tf.constant(max(KS)))[S.ITEM_IDS]
    out = {}
    for prefix, rows in row_groups(truth, cold):
        hits = E.hit_rates(items, truth.row_user[rows], truth.items[rows], KS)
        out.update({f"served_{prefix}_{k}": round(v, 4) for k, v in hits.items()})
    top = batched(module.recommend, truth.users, k=tf.constant(TOP))[S.ITEM_IDS]
    ranking = E.ranking_metrics(top, truth.relevant, TOP)
    out.update({k: round(v, 4) for k, v in ranking.items()})
    return out


def markdown(result: dict) -> str:
    """One row per serving setting, the metrics as served_metrics names them."""
    metrics = [k for k in result["rows"][0] if k not in ("serving", "seconds")]
    lines = [f"# Cold-item serving settings, validation cut (cold draw seed {result['seed']}, "
             f"{result['cold_items']} cold items; weights {result['weights']})", "",
             "| setting | " + " | ".join(metrics) + " |",
             "|---|" + "---:|" * len(metrics)]
    for row in result["rows"]:
        setting = json.dumps(row["serving"]) if row["serving"] else "defaults"
        lines.append(f"| {setting} | " + " | ".join(str(row[k]) for k in metrics) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-latest-small", choices=sorted(LABELS))
    parser.add_argument("--data", help="the extracted dataset (default: shared/data/<dataset>)")
    parser.add_argument("--seed", type=int, default=1, help="the validation cold draw")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--config", default="{}", help="JSON ModelConfig training overrides")
    parser.add_argument("--weights", help="weights an earlier --train-only run wrote")
    parser.add_argument("--grid", default="[{}]", help="JSON list of ModelConfig overrides")
    parser.add_argument("--map-text-only", action="store_true", help="the cold-item map "
                        "without the description block (the map before it; ablation)")
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "text_encoder"))
    parser.add_argument("--out", default="/tmp/cold_item_validation.json")
    args = parser.parse_args(argv)
    work_root = Path(args.work_dir)
    data = args.data or default_data_path(args.dataset)
    prepared, work, cold = validation_data(data, work_root, args.seed, args.dataset)
    uri, _ = encode_catalog(work / "examples" / "catalog", work_root / LABELS[args.dataset],
                            TextEncoderConfig.from_exec_properties({"mode": "pretrained"}))
    text = ItemText.load(uri)
    if args.map_text_only:
        text = dataclasses.replace(text, descriptions=None)
    catalog = str(work / "examples" / "catalog")
    weights_dir = args.weights
    if not weights_dir:
        config = ModelConfig.from_dict(with_protocol(prepared, json.loads(args.config)))
        weights_dir, seconds = train_weights(prepared, config, work, catalog_dir=catalog,
                                             item_text=text)
        print(f"trained in {seconds:.0f}s: weights {weights_dir}", flush=True)
    if args.train_only:
        return 0
    rows = []
    for serving in json.loads(args.grid):
        t0 = time.time()
        metrics = served_metrics(rebuilt(prepared, weights_dir, serving, catalog, text),
                                 prepared, cold)
        rows.append({"serving": serving, **metrics, "seconds": round(time.time() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
        result = {"weights": weights_dir, "seed": args.seed, "cold_items": len(cold),
                  "rows": rows}
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        Path(args.out).with_suffix(".md").write_text(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
