"""The answer cache (models/answer_cache.py) on the real model: same answers, fewer nodes.

Exports the serving benchmark's ML-100K u1 weights (benchmarks/real_model.py)
twice with the production path, with the answer cache (the default) and
without it (answer_cache_max_entries=0, every request computed as before),
then in one fresh TensorFlow-only process calls `recommend` on both for every
known user (batches of 64) at k = 1, 10, 25 (cached) and 26, 60 (above the
cache depth: computed in both), k = 10 one user a request, and for 20 unknown
ids, and reports how many
answers have identical item lists and the largest score / rating difference.

    python benchmarks/answer_cache_check.py --work-dir /tmp/serve-real --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
from quality_data import default_data_path, prepare
from real_model import export_from_weights, real_model, weights_dir

from mtrec.contracts import features as F

KS = (1, 10, 25, 26, 60)
BATCH = 64

_COMPARE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cached, computed, users, unknown, ks, batch = json.loads(sys.argv[1])
    fast = tf.saved_model.load(cached).signatures["recommend"]
    slow = tf.saved_model.load(computed).signatures["recommend"]
    out = {}
    for k, size in [(k, batch) for k in ks] + [(10, 1)]:  # and one user a request
        same = total = 0
        score = rating = 0.0
        groups = [users[i:i + size] for i in range(0, len(users), size)] + [unknown]
        for ids in groups:
            a = fast(user_id=tf.constant(ids), k=tf.constant(k))
            b = slow(user_id=tf.constant(ids), k=tf.constant(k))
            same += int((a["item_ids"].numpy() == b["item_ids"].numpy()).all(axis=1).sum())
            total += len(ids)
            score = max(score, float(np.abs(a["scores"] - b["scores"]).max()))
            rating = max(rating, float(np.abs(a["ratings"] - b["ratings"]).max()))
        out[f"k={k}, {size} users a request"] = {"identical_lists": same, "requests_rows": total,
                  "max_abs_score_diff": score, "max_abs_rating_diff": rating}
    assert "mtrec" not in sys.modules
    print("RESULT" + json.dumps(out))
    """
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default=os.path.join("/tmp", "serve-real"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default=None, help="write answer_cache.json here")
    args = parser.parse_args()
    cached = real_model(args.work_dir, args.epochs)
    prepared, work = prepare("ml-100k", default_data_path("ml-100k"), "u1", Path(args.work_dir))
    computed = export_from_weights(prepared, str(weights_dir(work, args.epochs)),
                                   str(work / "serving-model-no-answer-cache"),
                                   answer_cache_max_entries=0)
    users = [u.decode() for u in prepared.tft_output.vocabulary_by_name(F.USER_VOCAB)]
    unknown = [f"unknown-{i}" for i in range(20)]
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    payload = json.dumps([cached, computed, users, unknown, list(KS), BATCH])
    done = subprocess.run([sys.executable, "-c", _COMPARE, payload], capture_output=True,
                          text=True, env=env, check=True)
    result = {"model": "ML-100K u1, benchmarks/real_model.py", "known_users": len(users),
              "unknown_ids": len(unknown), "batch": BATCH,
              "by_k": json.loads(done.stdout.split("RESULT", 1)[1])}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out, "answer_cache.json").write_text(json.dumps(result, indent=1) + "\n")
        Path(args.out, "answer_cache.md").write_text(markdown(result))
    return 0


def markdown(result: dict) -> str:
    """The JSON's table: cached against computed `recommend`, per k and request size."""
    lines = [f"# Answer cache vs computed `recommend`: {result['model']}", "",
             f"{result['known_users']} known users + {result['unknown_ids']} unknown ids.", "",
             "| request | identical lists | max abs score diff | max abs rating diff |",
             "|---|---:|---:|---:|"]
    for name, row in result["by_k"].items():
        lines.append(f"| {name} | {row['identical_lists']} / {row['requests_rows']} | "
                     f"{row['max_abs_score_diff']:.2g} | {row['max_abs_rating_diff']:.2g} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
