"""One replica of tests/test_multi_worker.py's optimizer check (TF_CONFIG set by the test).

    python tests/multi_worker_step.py XF_DIR OUT_DIR adam lazy_adam

For each optimizer: the real MultiTaskModel under MultiWorkerMirroredStrategy
takes STEPS training steps, each replica on its half of a global batch; then,
on the chief only, outside the strategy and from the same initial weights, a
reference copy takes the same steps on the whole global batches. Writes
OUT_DIR/<task>-<optimizer>.npz with the initial and distributed weights and
losses (the chief's also the reference's); the test compares them.

The rating task only: its loss is per example. The retrieval task's in-batch
softmax and the relevance task's rolled in-batch negatives (`tf.roll` over the
batch) are per replica by design (docs/scale.md), so with them a replica's
half-batch step is not one process's whole-batch step (measured: with
relevance the weights were up to 0.015 apart after two steps of 0.01).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from mtrec.models.config import ModelConfig, resolve_optimizer
from mtrec.models.serving_tables import build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model, make_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from transform_local import as_dataset, read_transformed

PER_REPLICA_BATCH = 32
STEPS = 2
# Deterministic training: no dropout of any kind, no regularisation (its loss
# is added on every replica; a known gap, docs/scale.md).
CONFIG = {"embedding_dim": 8, "tasks": ["rating"], "l2": 0.0, "id_dropout": 0.0,
          "rated_dropout": 0.0, "lr_schedule": "constant", "learning_rate": 0.01,
          "batch_size": PER_REPLICA_BATCH}


def _slice(columns: dict[str, np.ndarray], start: int, stop: int) -> dict[str, tf.Tensor]:
    return {k: tf.constant(v[start:stop]) for k, v in columns.items()}


def run(
    strategy, tft_output, tables, columns, optimizer: str, reference_too: bool
) -> dict[str, np.ndarray]:
    sizes = VocabSizes.from_transform_output(tft_output)
    config = resolve_optimizer(ModelConfig.from_dict({**CONFIG, "optimizer": optimizer}), sizes)
    replicas = strategy.num_replicas_in_sync
    global_batch = PER_REPLICA_BATCH * replicas
    batches = [_slice(columns, s * global_batch, (s + 1) * global_batch) for s in range(STEPS)]
    with strategy.scope():
        model = build_model(sizes, config, tft_output, tables)
        model(batches[0])  # creates the (mirrored) variables, initial values from the chief
        model.compile(optimizer=make_optimizer(config, tables.num_train_examples))
    initial = [w.copy() for w in model.get_weights()]

    @tf.function
    def distributed_step(inputs):
        return strategy.run(model.train_step, args=(inputs,))

    losses = []
    for batch in batches:
        def per_replica(ctx, batch=batch):
            i = ctx.replica_id_in_sync_group
            return {k: v[i * PER_REPLICA_BATCH:(i + 1) * PER_REPLICA_BATCH]
                    for k, v in batch.items()}

        inputs = strategy.experimental_distribute_values_from_function(per_replica)
        logs = distributed_step(inputs)
        losses.append(float(strategy.experimental_local_results(logs["loss"])[0]))
    result = {
        **{f"initial_{i}": w for i, w in enumerate(initial)},
        **{f"distributed_{i}": w for i, w in enumerate(model.get_weights())},
        "losses": np.array(losses), "replicas": np.array(replicas),
    }
    if not reference_too:  # one reference is enough; the 2 cores are shared
        return result
    reference = build_model(sizes, config, tft_output, tables)  # the default strategy
    reference(batches[0])
    reference.set_weights(initial)
    reference.compile(optimizer=make_optimizer(config, tables.num_train_examples))
    reference_step = tf.function(reference.train_step)
    reference_losses = [float(reference_step(batch)["loss"]) for batch in batches]
    return {**result, **{f"reference_{i}": w for i, w in enumerate(reference.get_weights())},
            "reference_losses": np.array(reference_losses)}


def main(argv: list[str]) -> None:
    xf_dir, out_dir, *optimizers = argv
    # Before any other TensorFlow op: it configures the collectives.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = json.loads(os.environ["TF_CONFIG"])["task"]
    tft_output = tft.TFTransformOutput(os.path.join(xf_dir, "transform"))
    columns = read_transformed(tft_output, os.path.join(xf_dir, "transformed", "train"))
    tables = build_serving_tables(as_dataset(columns, 512),
                                  VocabSizes.from_transform_output(tft_output))
    for optimizer in optimizers:
        arrays = run(strategy, tft_output, tables, columns, optimizer, task["type"] == "chief")
        np.savez(os.path.join(out_dir, f"{task['type']}-{optimizer}.npz"), **arrays)


if __name__ == "__main__":
    main(sys.argv[1:])
