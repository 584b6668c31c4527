"""Serving-time settings chosen on validation, one training for every setting.

    .venv/bin/python benchmarks/serving_sweep.py --grid '[{}, {"item_item_weight": 2}]'

The re-ranker's knobs (ModelConfig.item_item_weight / item_item_l2 / blend)
change what `recommend` answers, not what training learns, so retraining per
setting (~5 min on these 2 cores) would measure seed noise as much as the
setting. Here the model trains once on the ML-100K validation holdout (the
test split is never read; quality_data.holdout_split), its weights are kept,
and for each setting the same weights are re-exported the way `mtrec add-items`
does (build_model + restore_weights + ServingModule) and `recommend` is
measured in process. cold_users.py --validation uses `rebuilt` the same way
for `recommend_from_items`.

Prints one row per setting and writes <out>/serving_sweep_<split>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.contracts import signatures as S
from mtrec.models.config import ModelConfig
from mtrec.models.item_catalog import read_catalog
from mtrec.models.item_text import ItemText
from mtrec.models.serving_module import ServingModule
from mtrec.models.serving_tables import build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model, train_and_export
from mtrec.models.weights_file import load_config, restore_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import Prepared, prepare, resolve, shuffled, with_protocol
from served_metrics import DEEP, TOP, batched, measure, served_ratings
from transform_local import as_dataset

REPO = Path(__file__).resolve().parents[1]


def train_weights(prepared: Prepared, config: ModelConfig, work: Path, seed: int = 0,
                  catalog_dir: str | None = None, item_text: ItemText | None = None
                  ) -> tuple[str, float]:
    """Train once with the Trainer's code path; (the weights directory, training seconds).
    `catalog_dir`/`item_text`: the full catalogue and the text vectors, as the Trainer's."""
    root = tempfile.mkdtemp(prefix="sweep-", dir=work)
    t0 = time.time()
    train_and_export(shuffled(prepared.train, config.batch_size, seed),
                     as_dataset(prepared.eval, 4096), as_dataset(prepared.train, 8192),
                     prepared.tft_output, config, f"{root}/model", catalog_dir=catalog_dir,
                     item_text=item_text, weights_dir=f"{root}/weights", seed=seed)
    return f"{root}/weights", time.time() - t0


def rebuilt(prepared: Prepared, weights_dir: str, serving: dict,
            catalog_dir: str | None = None, item_text: ItemText | None = None) -> ServingModule:
    """The trained weights under a config with `serving`'s settings replaced (no export:
    the module's signatures are called in process). `catalog_dir`/`item_text` as for
    train_weights (the `mtrec add-items` path: every catalogue item, with its text)."""
    config = ModelConfig.from_dict({**dataclasses.asdict(load_config(weights_dir)), **serving})
    sizes = VocabSizes.from_transform_output(prepared.tft_output)
    catalog = read_catalog(catalog_dir, prepared.tft_output) if catalog_dir else None
    tables = build_serving_tables(as_dataset(prepared.train, 8192), sizes, catalog)
    model = build_model(sizes, config, prepared.tft_output, tables, item_text)
    model({k: v[:2] for k, v in prepared.train.items()})  # build every layer, then restore
    restore_weights(model, weights_dir)
    return ServingModule(model, prepared.tft_output, tables, item_text, cache_users=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data")
    parser.add_argument("--split", default="u1")
    parser.add_argument("--config", default="{}", help="JSON training overrides")
    parser.add_argument("--grid", default="[{}]", help="JSON list of serving overrides")
    parser.add_argument("--weights", help="a weights directory an earlier sweep trained "
                        "(with the same --config): skips training")
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "quality"))
    parser.add_argument("--out", default="/tmp")
    args = parser.parse_args(argv)
    split, data, overrides = resolve(argparse.Namespace(**vars(args), folds=None, epochs=None))
    prepared, work = prepare(args.dataset, data, split, Path(args.work_dir), holdout=True)
    truth = prepared.truth()
    config = ModelConfig.from_dict(with_protocol(prepared, overrides))
    weights_dir, seconds = (args.weights, 0.0) if args.weights else train_weights(
        prepared, config, work)
    print(f"trained in {seconds:.0f}s: {json.dumps(json.loads(args.config))}", flush=True)
    rows = []
    for serving in json.loads(args.grid):
        module = rebuilt(prepared, weights_dir, serving)
        recommended = batched(module.recommend, truth.users, k=tf.constant(DEEP))[S.ITEM_IDS]
        predicted = served_ratings(module.score, truth)
        metrics = measure(truth, {"recommended": recommended,
                                  "ratings": (predicted, truth.ratings)})
        # Ratings are 1..5: how much clipping the rating head's output would buy.
        metrics["rmse_clipped"] = float(np.sqrt(np.mean(
            (np.clip(predicted, 1.0, 5.0) - truth.ratings) ** 2)))
        rows.append({"serving": serving, **metrics})
        print(f"{json.dumps(serving)}: NDCG@{TOP} {metrics[f'ndcg@{TOP}']:.4f} "
              f"R@{DEEP} {metrics[f'recall@{DEEP}']:.4f} "
              f"cov@{TOP} {metrics[f'coverage@{TOP}']:.3f} RMSE {metrics['rmse']:.4f} "
              f"clipped {metrics['rmse_clipped']:.4f}", flush=True)
    out = Path(args.out) / f"serving_sweep_{split or 'time'}.json"
    out.write_text(json.dumps({"config": json.loads(args.config), "train_seconds": seconds,
                               "rows": rows}, indent=2, default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
