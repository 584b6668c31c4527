"""How many weights per item the sparse item-item term keeps (ModelConfig.item_item_top_k).

    .venv/bin/python benchmarks/item_item_top_k.py --data ../shared/data/ml-latest-small

On ml-latest-small's per-user time split (the latest 20% of each user's
ratings are the test part and are not read), the training part is cut again
the same way: each user's latest 20% of training ratings are the validation
cut, the rest fit EASE (sparse_item_item.fit_top_k, l2 = ModelConfig's).
Reported, per K: the share of |B|'s mass each row keeps (mean over fitted
items), and the validation NDCG@10 / R@50 of EASE alone (scores X B, the
user's fitted items excluded), dense B against its top-K rows. Also the fit's
wall time and peak RSS (K = the config default, fresh process, measured first).
Writes benchmarks/results/item_item_top_k.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np

from mtrec.contracts import features as F
from mtrec.data import load_dataset
from mtrec.data.splits import time_split
from mtrec.models import evaluation as E
from mtrec.models.config import ModelConfig
from mtrec.models.serving_tables import row_splits
from mtrec.models.sparse_item_item import fit_top_k, fitted_items

if TYPE_CHECKING:
    import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TEST_FRACTION = VALIDATION_FRACTION = 0.2
KS = (10, 25, 50, 100, 200, 400, 1000)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cut(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, validation) rows of the training part, test rows dropped."""
    train = ratings[~time_split(ratings, TEST_FRACTION)].reset_index(drop=True)
    is_val = time_split(train, VALIDATION_FRACTION)
    return train[~is_val], train[is_val]


def _ranked(b: np.ndarray, splits: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    users = np.repeat(np.arange(len(splits) - 1), np.diff(splits))
    x = np.zeros((len(splits) - 1, b.shape[0]), np.float32)
    x[users, idx] = 1.0
    scores = x @ b
    scores[:, 0] = -np.inf
    scores[x > 0] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _truncated(b: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros_like(b)
    top = np.argpartition(-np.abs(b), k - 1, axis=1)[:, :k]
    np.put_along_axis(out, top, np.take_along_axis(b, top, axis=1), axis=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="extracted ml-latest-small directory")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    config = ModelConfig()
    ratings = load_dataset("ml-latest-small", args.data).ratings
    fit, val = _cut(ratings)
    users = {u: i for i, u in enumerate(sorted(ratings[F.USER_ID].unique()))}
    items = {m: i + 1 for i, m in enumerate(sorted(fit[F.ITEM_ID].unique()))}  # 0: padding
    num_items = len(items) + 1
    fit = fit.assign(u=fit[F.USER_ID].map(users), i=fit[F.ITEM_ID].map(items))
    fit = fit.sort_values(["u", "i"], kind="stable")
    splits, idx = row_splits(fit["u"].to_numpy(), len(users)), fit["i"].to_numpy()

    base = _peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    fit_top_k(splits, idx, num_items, config.item_item_l2, config.item_item_top_k,
              config.item_item_max_fit_items)
    fit_s, fit_cpu, peak = time.perf_counter() - start, time.process_time() - cpu, _peak_mb()

    # The dense B: every weight kept (K >= items is fit_item_item's B, test-pinned).
    active = fitted_items(idx, num_items, config.item_item_max_fit_items)
    neighbours, weights = fit_top_k(splits, idx, num_items, config.item_item_l2,
                                    len(active), config.item_item_max_fit_items)
    b = np.zeros((num_items, num_items), np.float32)
    np.put_along_axis(b, neighbours.astype(np.int64), weights, axis=1)
    mass = np.abs(b[active]).sum(axis=1)
    relevant: list[set[int]] = [set() for _ in users]
    for u, m in zip(val[F.USER_ID].map(users), val[F.ITEM_ID].map(items), strict=True):
        if not np.isnan(m):
            relevant[u].add(int(m))

    def metrics(weights: np.ndarray) -> dict[str, float]:
        ranked = _ranked(weights, splits, idx, 50)
        got = E.ranking_metrics(ranked, relevant, 10)
        r50 = E.ranking_metrics(ranked, relevant, 50)["recall@50"]
        return {"ndcg@10": round(got["ndcg@10"], 4), "recall@50": round(r50, 4)}

    rows = [{"k": "dense", "kept_mass": 1.0, **metrics(b)}]
    for k in KS:
        cut = _truncated(b, k)
        kept = float(np.mean(np.abs(cut[active]).sum(axis=1) / np.maximum(mass, 1e-12)))
        rows.append({"k": k, "kept_mass": round(kept, 4), **metrics(cut),
                     "export_mb": round(num_items * k * 8 / 2**20, 1)})
        print(rows[-1], flush=True)
    result = {
        "host": f"{platform.machine()}, shared 2 CPUs",
        "fit_items": int(len(active)), "fit_ratings": int(len(idx)),
        "validation_ratings": int(len(val)), "l2": config.item_item_l2,
        "fit_seconds": round(fit_s, 1), "fit_cpu_seconds": round(fit_cpu, 1),
        "fit_peak_rss_mb": round(peak, 0),
        "rss_before_fit_mb": round(base, 0), "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # like the other benchmarks' --out
    (out / "item_item_top_k.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# Sparse item-item term: top-K weights per item (ml-latest-small, validation cut)",
        "",
        f"EASE (l2 {config.item_item_l2:g}) fitted on {result['fit_ratings']:,} ratings "
        f"({result['fit_items']:,} items): each user's ratings minus their latest 20% "
        "(test, not read) and the latest 20% of the rest (validation, "
        f"{result['validation_ratings']:,} ratings). Fit (sparse_item_item.fit_top_k, "
        f"float64, K {config.item_item_top_k}): {fit_s:.1f} s wall, {fit_cpu:.1f} s CPU, "
        f"peak RSS {peak:,.0f} MB (process before it: "
        f"{base:,.0f} MB), {result['host']}.",
        "",
        r"| K | kept \|B\| mass per row | val NDCG@10 | val R@50 | MB (int32 + float32) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['k']} | {r['kept_mass']:.3f} | {r['ndcg@10']:.4f} | "
                     f"{r['recall@50']:.4f} | {r.get('export_mb', '–')} |")
    lines += ["", "EASE alone: scores = X B, the user's fitted items excluded; binary "
              "relevance (models/evaluation.ranking_metrics)."]
    (out / "item_item_top_k.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
