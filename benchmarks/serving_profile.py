"""Where `recommend`'s in-process time goes: signatures that stop at each stage.

    python benchmarks/serving_profile.py label=<model dir> [label=<model dir> ...]

The signatures nest: `embed_user` is the Transform lookup of user_id plus the
query (tower, or the export's per-user table); `retrieve` adds the similarity
to every catalogue item, top-k and the item_id string gather; `recommend` adds
the item-item term, the seen-item exclusion and the re-rank (pair heads over
max(100, 4k) candidates, the blend). Differences of their p50s give each
stage's cost, and the same model exported with and without the per-user cache
(models/serving_ops.py) gives what the cache removes. Models and signatures
take turns in rounds, so all see the same background load on a shared box.
Writes serving_profile.{json,md} under --out (default: benchmarks/results).
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

from mtrec.contracts import signatures as S

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ROUNDS, PER_ROUND = 20, 25


def calls(model_dir: str, users: list[str]) -> dict:
    sig = tf.saved_model.load(model_dir).signatures
    u, k = tf.constant(users[:1]), tf.constant(10)
    items = sig[S.RECOMMEND](user_id=u, k=tf.constant(100))[S.ITEM_IDS]
    return {  # the table's row labels: a signature, and how many items it was given
        S.EMBED_USER: lambda: sig[S.EMBED_USER](user_id=u),
        S.RETRIEVE: lambda: sig[S.RETRIEVE](user_id=u, k=k),
        S.RECOMMEND: lambda: sig[S.RECOMMEND](user_id=u, k=k),
        f"{S.SCORE} (100 items)": lambda: sig[S.SCORE](user_id=u, item_ids=items),
        f"{S.RECOMMEND_FROM_ITEMS} (20)": lambda: sig[S.RECOMMEND_FROM_ITEMS](
            item_ids=items[:, :20], k=k),
    }


def _model(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected label=<model dir>, got {text!r}")
    return label, path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=_model, metavar="label=MODEL_DIR",
                        help="a pushed model version folder, e.g. cached=/tmp/m/1")
    parser.add_argument("--out", default=RESULTS,
                        help="results folder (default: the committed benchmarks/results)")
    args = parser.parse_args(argv)
    models = dict(args.models)
    fns = {label: calls(path, ["1"]) for label, path in models.items()}
    lat: dict = {label: {name: [] for name in f} for label, f in fns.items()}
    for f in fns.values():
        for fn in f.values():
            for _ in range(20):
                fn()
    load_start = os.getloadavg()
    for _ in range(ROUNDS):
        for label, f in fns.items():
            for name, fn in f.items():
                for _ in range(PER_ROUND):
                    t0 = time.perf_counter()
                    fn()
                    lat[label][name].append(time.perf_counter() - t0)
    p50_ms = {label: {n: round(float(np.median(v)) * 1e3, 3) for n, v in d.items()}
              for label, d in lat.items()}
    p99_ms = {label: {n: round(float(np.percentile(v, 99)) * 1e3, 3) for n, v in d.items()}
              for label, d in lat.items()}
    out = {
        "load_average": [list(load_start), list(os.getloadavg())],
        "calls_per_cell": ROUNDS * PER_ROUND,
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
        "models": models,
    }
    names = list(next(iter(fns.values())))
    lines = ["| signature (c=1, in-process, p50 / p99 ms) | "
             + " | ".join(models) + " |", "| --- |" + " ---: |" * len(models)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(
            f"{p50_ms[m][n]} / {p99_ms[m][n]}" for m in models) + " |")
    lines.append(f"\nLoad average (1/5/15 min) at start {load_start}, end "
                 f"{os.getloadavg()}; {ROUNDS * PER_ROUND} calls per cell, interleaved.")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "serving_profile.json"), "w") as fh:
        json.dump(out, fh, indent=2)
    with open(os.path.join(args.out, "serving_profile.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
