"""Diagnosis: what the item-item term's truncation does to cold items, on one trained model.

    .venv/bin/python benchmarks/item_item_cold_diag.py MODEL_DIR --ks 400 2000 0

MODEL_DIR is a cold-protocol export of benchmarks/text_encoder.py on
ml-latest-small (seed-0 cold draw; its prepared data are read from --work-dir,
the text_encoder run's). The export's per-user item-item table (`user_item_item`,
what `recommend` reads for known users) is replaced by variants computed here
from the export's own rated-item bags, and the served cold / warm-item HR@K
measured through `recommend` each time: the term off (zeros), top-K for each
K in --ks (0 = every weight: the dense term). The first row recomputes the
exported table and must reproduce it. It reads the TEST split, so it diagnoses;
it chooses nothing (ModelConfig.item_item_top_k comes from item_item_top_k.py's
validation cut). Writes --out (JSON) and prints the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.contracts import signatures as S
from mtrec.data import clean, load_dataset
from mtrec.models import evaluation as E
from mtrec.models.item_item import item_item_term
from mtrec.models.sparse_item_item import fit_top_k, top_k_in_catalog

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import prepare_dataset
from served_metrics import batched as _batched
from text_encoder import hold_out_items
from text_encoder_metrics import KS, cold_rows

REPO = Path(__file__).resolve().parents[1]
COLD_LABEL = "ml-latest-small_time_cold"  # text_encoder.py's label for this protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--ks", type=int, nargs="+", default=[400, 2000, 0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml-latest-small"))
    parser.add_argument("--work-dir", default=str(REPO / "outputs" / "text_encoder"))
    parser.add_argument("--l2", type=float, default=500.0, help="ModelConfig.item_item_l2")
    parser.add_argument("--out", default="item_item_cold_diag.json")
    args = parser.parse_args()

    dataset = clean(load_dataset("ml-latest-small", args.data, None)).dataset
    cold_dataset, cold = hold_out_items(dataset, 0.1, 0)
    truth = prepare_dataset(cold_dataset, COLD_LABEL, Path(args.work_dir))[0].truth()
    is_cold = cold_rows(truth.items, cold)
    model = tf.saved_model.load(args.model_dir)

    def served() -> dict[str, float]:
        items = _batched(model.signatures[S.RECOMMEND], truth.users,
                         k=tf.constant(max(KS)))[S.ITEM_IDS]
        out = {}
        for prefix, rows in (("cold", is_cold), ("warm", ~is_cold)):
            hits = E.hit_rates(items, truth.row_user[rows], truth.items[rows], KS)
            out.update({f"served_{prefix}_{k}": round(v, 4) for k, v in hits.items()})
        return out

    splits, idx = model.rated_splits.numpy(), model.rated_idx.numpy()
    catalog_idx = model.catalog_idx.numpy()
    num_items, n = model.item_item.neighbours.shape[0], len(catalog_idx)
    users = len(splits) - 1
    x = np.zeros((users, num_items), np.float32)  # the bags as a 0/1 matrix
    x[np.repeat(np.arange(users), np.diff(splits)), idx] = 1.0
    similarity = tf.constant(model.user_queries.numpy() @ model.item_retrieval_vectors.numpy().T)

    def table(neighbours: np.ndarray, weights: np.ndarray, rated: np.ndarray) -> np.ndarray:
        dense = np.zeros((num_items, n), np.float32)
        np.add.at(dense, (np.repeat(np.arange(num_items), neighbours.shape[1]),
                          neighbours.ravel()), weights.ravel())
        return item_item_term(similarity, tf.constant(x @ dense), tf.constant(rated)).numpy()

    exported = model.user_item_item.numpy()
    again = table(model.item_item.neighbours.numpy(), model.item_item.weights.numpy(),
                  model.item_item_rated.numpy())
    rows = {"as exported": {"max_abs_recomputed": float(np.abs(again - exported).max()),
                            **served()}}
    print(rows, flush=True)
    model.user_item_item.assign(np.zeros_like(exported))
    rows["term off"] = served()
    print(rows["term off"], flush=True)
    for k in args.ks:
        neighbours, weights = fit_top_k(splits, idx, num_items, args.l2, k or num_items,
                                        num_items)
        at, weights, rated = top_k_in_catalog(neighbours, weights, catalog_idx)
        model.user_item_item.assign(table(at, weights, rated))
        rows[f"K {k}" if k else "dense"] = served()
        print(k, rows[f"K {k}" if k else "dense"], flush=True)
    Path(args.out).write_text(json.dumps({"model_dir": args.model_dir, "rows": rows},
                                         indent=1) + "\n")


if __name__ == "__main__":
    main()
