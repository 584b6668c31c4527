"""Training-step time against embedding-table size: Keras Adam vs our LazyAdam.

Why: with Keras' Adam and a whole-table l2 penalty, every step touched every row
of every id table, so the Trainer's time per step grew with the number of users
and items and an epoch grew as n^2 (benchmarks/results/scale.md). This measures
the step alone, side by side in one process, for the two setups the Trainer
has used:

- baseline: `tf.keras.optimizers.Adam` + `embeddings_regularizer=l2` (before);
- ours: `mtrec.models.optimizer.LazyAdam` + l2 on the looked-up rows (now).

The model is a user table and an item table of V rows (128-d), a dot product and
a logistic loss, on batches of 1,024 random (user, item) ids: the id-table part
of the real model, where the cost difference lives.

    .venv/bin/python benchmarks/optimizer_step.py --rows 30000 100000 300000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow, as in the Trainer)

# isort: split
import numpy as np
import tensorflow as tf

from mtrec.models.optimizer import LazyAdam

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, DIM, L2 = 1024, 128, 1e-4


def _model(rows: int, lazy: bool) -> tf.keras.Model:
    l2 = tf.keras.regularizers.l2(L2)
    reg = {"activity_regularizer": l2} if lazy else {"embeddings_regularizer": l2}
    users = tf.keras.Input((), dtype=tf.int64)
    items = tf.keras.Input((), dtype=tf.int64)
    u = tf.keras.layers.Embedding(rows, DIM, **reg)(users)
    i = tf.keras.layers.Embedding(rows, DIM, **reg)(items)
    logit = tf.reduce_sum(u * i, axis=-1)
    return tf.keras.Model([users, items], logit)


def step_ms(rows: int, lazy: bool, steps: int, warmup: int = 5) -> float:
    """Median wall ms of one optimizer step (forward, backward, update)."""
    tf.keras.utils.set_random_seed(0)
    model = _model(rows, lazy)
    optimizer = LazyAdam(1e-3) if lazy else tf.keras.optimizers.Adam(1e-3)
    loss_fn = tf.keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def train_step(users: tf.Tensor, items: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model([users, items], training=True)) + tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    rng = np.random.default_rng(0)
    times = []
    for step in range(warmup + steps):
        users = tf.constant(rng.integers(0, rows, BATCH))
        items = tf.constant(rng.integers(0, rows, BATCH))
        labels = tf.constant(rng.integers(0, 2, BATCH).astype(np.float32))
        start = time.perf_counter()
        train_step(users, items, labels).numpy()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def render(result: dict) -> str:
    lines = [
        "# Training step vs embedding-table size: Adam vs LazyAdam",
        "",
        f"`benchmarks/optimizer_step.py`: two id tables of V rows x {DIM}, batch {BATCH}, "
        f"median of {result['steps']} steps after 5 warm-up steps, both setups in one process "
        f"({result['host']}).",
        "",
        "| rows per table | Adam + table l2 (ms/step) | LazyAdam + batch l2 (ms/step) | speed-up |",
        "|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['rows']:,} | {row['adam_ms']:.1f} | {row['lazy_ms']:.1f} "
            f"| {row['adam_ms'] / row['lazy_ms']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[30_000, 100_000, 300_000, 1_000_000]
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for v in args.rows:
        adam, lazy = step_ms(v, False, args.steps), step_ms(v, True, args.steps)
        rows.append({"rows": v, "adam_ms": adam, "lazy_ms": lazy})
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "steps": args.steps,
        "host": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}",
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "optimizer_step.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "optimizer_step.md").write_text(render(result))


if __name__ == "__main__":
    main()
