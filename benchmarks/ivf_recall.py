"""Recall and speed of the IVF first stage (models/ivf.py) against the exact scan.

    python benchmarks/ivf_recall.py <exported model dir> [--nprobe 8 16 32 64]

For every known user of the exported model (their `embed_user` vectors), the
exact top-k by retrieval score over the whole catalogue against the IVF's top-k
for each nprobe, seen items not excluded (the first stage's own recall). The
index is the export's own (`ivf` in the SavedModel) or, for a catalogue below
ModelConfig.ivf_min_items, one fitted now with the export's rule (sqrt(N)
clusters). Recall is tie-aware: an IVF item counts as a hit when its exact score
is at least the exact k-th score, because benchmarks/real_catalogue.py repeats
the real items, so each score occurs many times and which copy the exact scan
returns is arbitrary. Latency is the in-process search for one user (p50 of
`--calls`), exact and IVF side by side. Writes benchmarks/results/ivf_recall.json
(merged by model label).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.models.ivf import fit_ivf, probed_positions, probed_top

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
KS = (10, 100)


def _tables(model) -> tuple[list[tf.Tensor], str]:
    if getattr(model, "ivf", None) is not None:
        ivf = model.ivf
        return [tf.convert_to_tensor(v) for v in (ivf.centroids, ivf.splits, ivf.positions)], \
            "the export's"
    index = fit_ivf(model.item_retrieval_vectors.numpy())
    return [tf.constant(a) for a in (index.centroids, index.splits, index.positions)], \
        "fitted now"


def measure(model_dir: str, user_ids: list[bytes], nprobes: list[int], calls: int) -> dict:
    model = tf.saved_model.load(model_dir)
    queries = model.signatures["embed_user"](user_id=tf.constant(user_ids))["embedding"]
    items = tf.convert_to_tensor(model.item_retrieval_vectors)
    tables, source = _tables(model)
    exact = tf.matmul(queries, items, transpose_b=True).numpy()
    kth = {k: -np.partition(-exact, k - 1, axis=1)[:, k - 1] for k in KS}
    exact_fn = tf.function(lambda q: tf.math.top_k(tf.matmul(q, items, transpose_b=True),
                                                   max(KS)))
    out = {"items": int(items.shape[0]), "clusters": int(tables[0].shape[0]),
           "index": source, "users": len(user_ids), "exact_p50_ms": _p50(exact_fn, queries,
                                                                           calls), "nprobe": {}}
    for nprobe in nprobes:
        def search(q, nprobe=nprobe):
            probed = probed_positions(q, *tables, nprobe=nprobe)
            seen = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int64),
                                                    tf.zeros(tf.shape(q)[:1], tf.int64))
            return probed_top(q, items, probed, seen, max(KS)), probed.row_lengths()
        (_, positions, _), lengths = tf.function(search)(queries)
        row = {"p50_ms": _p50(tf.function(search), queries, calls),
               "items_scored_mean": float(np.mean(lengths.numpy()))}
        positions = positions.numpy()
        for k in KS:
            got = np.take_along_axis(exact, positions[:, :k], axis=1)
            row[f"recall@{k}"] = round(float(np.mean(got >= kth[k][:, None] - 1e-6)), 4)
        out["nprobe"][str(nprobe)] = row
        print(nprobe, row, flush=True)
    return out


def _p50(fn, queries: tf.Tensor, calls: int) -> float:
    one = queries[:1]
    fn(one)
    times = []
    for i in range(calls):
        q = queries[i % queries.shape[0]][tf.newaxis]
        t0 = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn(q))
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e3, 3)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--label", required=True)
    parser.add_argument("--users", required=True, help="a user vocabulary file (one id a "
                        f"line), e.g. the Transform output's {F.USER_VOCAB}")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args(argv)
    with open(args.users, "rb") as fh:
        users = [line.rstrip(b"\n") for line in fh if line.strip()]
    load = os.getloadavg()
    result = measure(args.model_dir, users, args.nprobe, args.calls)
    result["load_average"] = [list(load), list(os.getloadavg())]
    path = os.path.join(RESULTS, "ivf_recall.json")
    merged = {}
    if os.path.exists(path):
        with open(path) as fh:
            merged = json.load(fh)
    merged[args.label] = result
    with open(path, "w") as fh:
        json.dump(merged, fh, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
