"""Recall and speed of the IVF first stage (models/ivf.py) against the exact scan.

    python benchmarks/ivf_recall.py <exported model dir> [--nprobe 8 16 32 64]

For every known user of the exported model (their `embed_user` vectors), the
exact top-k by retrieval score against the IVF's for each nprobe, seen items not
excluded (the first stage's own recall). The IVF scores the probed items
exactly, so a true top-k item is found iff its cluster is probed: recall@k is
the share of the true top-k in the probed clusters. The index is the export's
own (`ivf` in the SavedModel) or, for a catalogue below
ModelConfig.ivf_min_items, one fitted now with the export's rule (sqrt(N)
clusters). benchmarks/real_catalogue.py's catalogue repeats the 1,682 real items
(--distinct 1682): copies have one vector, hence one cluster, so recall there is
over the distinct items, i.e. 1,682 distinct vectors in ~1,000 clusters, not
what a catalogue of 1M distinct items would give. Latency is the in-process
search for one user (p50 of `--calls`), exact and IVF side by side. Writes
ivf_recall.json (merged by model label) and its table ivf_recall.md under --out
(default: benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models.ivf import fit_ivf, probed_positions, probed_top

if TYPE_CHECKING:
    from collections.abc import Callable

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
KS = (10, 100)


def _tables(model: Any) -> tuple[tuple[tf.Tensor, tf.Tensor, tf.Tensor], str]:  # a SavedModel
    """(centroids, splits, positions) of the IVF index, and where it came from."""
    if getattr(model, "ivf", None) is not None:
        ivf = model.ivf
        return tuple(tf.convert_to_tensor(v) for v in (ivf.centroids, ivf.splits, ivf.positions)), \
            "the export's"
    index = fit_ivf(model.item_retrieval_vectors.numpy())
    return tuple(tf.constant(a) for a in (index.centroids, index.splits, index.positions)), \
        "fitted now"


def measure(model_dir: str, user_ids: list[bytes], nprobes: list[int], calls: int,
            distinct: int | None) -> dict:
    model = tf.saved_model.load(model_dir)
    queries = model.signatures[S.EMBED_USER](user_id=tf.constant(user_ids))[S.EMBEDDING]
    items = tf.convert_to_tensor(model.item_retrieval_vectors)
    n = int(items.shape[0])
    distinct = distinct or n
    tables, source = _tables(model)
    # The exact top-k over the distinct items (the first `distinct` rows; every later
    # row repeats row position % distinct, in the same cluster as it).
    exact = tf.matmul(queries, items[:distinct], transpose_b=True).numpy()
    best = np.argsort(-exact, axis=1, kind="stable")
    exact_fn = tf.function(lambda q: tf.math.top_k(tf.matmul(q, items, transpose_b=True),
                                                   max(KS)))
    by_nprobe: dict[str, dict[str, float]] = {}
    out = {"items": n, "distinct_items": distinct, "clusters": int(tables[0].shape[0]),
           "index": source, "users": len(user_ids),
           "exact_p50_ms": _p50(exact_fn, queries, calls), "nprobe": by_nprobe}
    for nprobe in nprobes:
        probed = probed_positions(queries, *tables, nprobe=nprobe)
        reach = [set((row % distinct).tolist()) for row in probed.numpy()]

        def search(q: tf.Tensor, nprobe: int = nprobe
                   ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            seen = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int64),
                                                    tf.zeros(tf.shape(q)[:1], tf.int64))
            return probed_top(q, items, probed_positions(q, *tables, nprobe=nprobe), seen,
                              max(KS))
        row = {"p50_ms": _p50(tf.function(search), queries, calls),
               "items_scored_mean": float(np.mean(probed.row_lengths().numpy()))}
        for k in KS:
            # Scoring is exact within the probed items, so a true top-k item is
            # returned iff its cluster is probed: recall@k = share of them probed.
            row[f"recall@{k}"] = round(float(np.mean(
                [len(reach[u] & set(best[u, :k].tolist())) / k for u in range(len(reach))])), 4)
        by_nprobe[str(nprobe)] = row
        print(nprobe, row, flush=True)
    return out


def _p50(fn: Callable[[tf.Tensor], object], queries: tf.Tensor, calls: int) -> float:
    one = queries[:1]
    fn(one)
    times = []
    for i in range(calls):
        q = queries[i % queries.shape[0]][tf.newaxis]
        t0 = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn(q))
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e3, 3)


def render(merged: dict) -> str:
    """The markdown table of every measured catalogue (one row per nprobe)."""
    lines = ["# IVF first stage: recall and latency against the exact scan", "",
             "Written by benchmarks/ivf_recall.py from ivf_recall.json; recall@k: share of "
             "the exact scan's top k by retrieval score (seen items not excluded) that the "
             "index also returns.", "",
             "| catalogue | items | distinct | clusters | nprobe | items scored | recall@10 "
             "| recall@100 | p50 ms | exact p50 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in merged.items():
        for nprobe, m in r["nprobe"].items():
            lines.append(f"| {label} | {r['items']:,} | {r['distinct_items']:,} | "
                         f"{r['clusters']} | {nprobe} | {m['items_scored_mean']:,.0f} | "
                         f"{m['recall@10']:.4f} | {m['recall@100']:.4f} | {m['p50_ms']} | "
                         f"{r['exact_p50_ms']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--label", required=True)
    parser.add_argument("--users", required=True, help="a user vocabulary file (one id a "
                        f"line), e.g. the Transform output's {F.USER_VOCAB}")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--distinct", type=int, help="the catalogue repeats its first this "
                        "many items (benchmarks/real_catalogue.py: 1682)")
    parser.add_argument("--out", default=RESULTS,
                        help="results folder (default: the committed benchmarks/results)")
    args = parser.parse_args(argv)
    with open(args.users, "rb") as fh:
        users = [line.rstrip(b"\n") for line in fh if line.strip()]
    load = os.getloadavg()
    result = measure(args.model_dir, users, args.nprobe, args.calls, args.distinct)
    result["load_average"] = [list(load), list(os.getloadavg())]
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "ivf_recall.json")
    merged = {}
    if os.path.exists(path):
        with open(path) as fh:
            merged = json.load(fh)
    merged[args.label] = result
    with open(path, "w") as fh:
        json.dump(merged, fh, indent=2)
    with open(os.path.join(args.out, "ivf_recall.md"), "w") as fh:
        fh.write(render(merged))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
