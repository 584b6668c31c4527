"""Multi-worker training, executed: 2 replicas on loopback under MultiWorkerMirroredStrategy.

The same run_fn the TFX Trainer calls, in the processes a TFJob or a Vertex
job would start (components/trainer/multi_worker.py), on tiny Transform output.
One single-process run with the same data, seed and global batch is the
reference the two-worker metrics are compared with.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mtrec.components.trainer import multi_worker as mw
from mtrec.components.trainer.tfjob import TFJobTraining, tfjob_manifest
from mtrec.components.trainer.vertex import VertexTraining
from mtrec.contracts import artifacts as A
from mtrec.contracts.artifacts import TRAINING_METRICS_FILE
from mtrec.contracts.pipeline import CONFIG_DISTRIBUTION, CONFIG_MODEL, SPLIT_PROTOCOL

PER_REPLICA_BATCH = 64
# Two workers see the same examples in a different order and split (DATA
# sharding), so their one epoch is not bit-identical to one process's. The
# eval metrics over the whole eval split are compared (the last batch's train
# loss is too noisy); 15 % bounds the difference (measured: docs/scale.md).
TOLERANCE = 0.15


def test_roles_and_tf_config_are_one_chief_plus_workers():
    assert mw.replica_roles(1) == {"chief": 1}
    assert mw.replica_roles(3) == {"chief": 1, "worker": 2}
    with pytest.raises(ValueError, match="replicas"):
        mw.replica_roles(0)
    cluster = mw.cluster_spec(["h:1", "h:2", "h:3"])
    assert cluster == {"chief": ["h:1"], "worker": ["h:2", "h:3"]}
    assert json.loads(mw.tf_config(cluster, "worker", 1)) == {
        "cluster": cluster, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="worker:2"):
        mw.tf_config(cluster, "worker", 2)
    ports = mw.free_ports(3)
    assert len(set(ports)) == 3


def test_tfjob_and_vertex_use_the_same_roles():
    specs = tfjob_manifest("j", TFJobTraining(image="i", replicas=3), ["x"])["spec"]
    assert {k: v["replicas"] for k, v in specs["tfReplicaSpecs"].items()} == {
        "Chief": 1, "Worker": 2}
    config = VertexTraining(region="r", image="i", project="p", replicas=3).custom_config()
    pools = next(v for v in config.values() if isinstance(v, dict))["job_spec"][
        "worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """Tiny synthetic data through the real preprocessing_fn, as TFRecords."""
    from mtrec.data import generate
    from mtrec.data.examples import write_examples
    from tests.transform_support import transform_examples

    out = tmp_path_factory.mktemp("mw")
    write_examples(generate(n_users=40, n_items=50, n_ratings=1200, seed=1), out / "examples")
    transform_examples(str(out / "examples"), str(out / "xf"))
    return out


def _args(root, run: str, distribution: str | None, batch: int, optimizer: str):
    def files(split):
        return sorted(glob.glob(str(root / "xf" / "transformed" / split / "*")))

    model = {"epochs": 1, "batch_size": batch, "embedding_dim": 8, "optimizer": optimizer,
             "lr_schedule": "constant"}
    return mw.TrainerArgs(
        train_files=files("train"), eval_files=files("eval"),
        transform_output=str(root / "xf" / "transform"),
        serving_model_dir=str(root / run / "serving"), model_run_dir=str(root / run / "run"),
        custom_config={CONFIG_MODEL: model, CONFIG_DISTRIBUTION: distribution},
    )


def _run(root, run, replicas, distribution, batch, optimizer):
    args = _args(root, run, distribution, batch, optimizer)
    os.makedirs(args.model_run_dir, exist_ok=True)
    codes = mw.launch(args, replicas, str(root / run / "logs"), timeout=900)
    logs = {os.path.basename(p): Path(p).read_text()
            for p in sorted(glob.glob(str(root / run / "logs" / "*.log")))}
    assert codes == [0] * replicas, {k: v[-3000:] for k, v in logs.items()}
    with open(os.path.join(args.model_run_dir, TRAINING_METRICS_FILE)) as f:
        return json.load(f), logs, args


_LOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf
    fn = tf.saved_model.load(sys.argv[1]).signatures["recommend"]
    out = fn(user_id=tf.constant(["1", "never-seen"]), k=tf.constant(5))
    print("RESULT" + json.dumps(bool(all(np.isfinite(v.numpy()).all()
                                         for v in out.values() if v.dtype.is_floating))))
    """
)


@pytest.mark.parametrize("optimizer", ["lazy_adam"])
def test_two_workers_train_like_one_and_only_the_chief_exports(transformed, optimizer):
    single, _, _ = _run(transformed, f"one-{optimizer}", 1, None, 2 * PER_REPLICA_BATCH,
                        optimizer)
    multi, logs, args = _run(transformed, f"two-{optimizer}", 2, "multi_worker_mirrored",
                             PER_REPLICA_BATCH, optimizer)
    chief, worker = logs["chief-0.log"], logs["worker-0.log"]
    # Each replica knows its role; both joined the collective and all-reduced gradients.
    assert "replica task chief:0" in chief and "replica task worker:0" in worker
    for text in (chief, worker):
        assert "replicas in sync: 2, global batch 128" in text
        assert "input sharding over 2 workers and 1 files: DATA" in text
        assert "Collective all_reduce tensors" in text or "CollectiveReduceV2" in text, text[-2000:]
    # Only the chief exports: the worker's copy went to scratch, deleted after it.
    assert "not the chief" in worker and "not the chief" not in chief
    scratch = re.search(r"not the chief: writing the export to scratch (\S+)", worker)
    assert scratch and not os.path.exists(scratch.group(1))
    assert multi["workers"] == 2 and multi["global_batch_size"] == 2 * PER_REPLICA_BATCH
    assert single["global_batch_size"] == multi["global_batch_size"]
    assert os.path.exists(os.path.join(args.serving_model_dir, "saved_model.pb"))
    # Same data, seed and global batch: the metrics agree within TOLERANCE.
    for key in ("eval_loss", "eval_rating_rmse", "eval_relevance_auc"):
        a, b = single[key], multi[key]
        assert abs(a - b) <= TOLERANCE * abs(a), (key, a, b)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run([sys.executable, "-c", _LOAD, args.serving_model_dir],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.split("RESULT", 1)[1]) is True


def test_one_distributed_step_with_each_optimizer_equals_one_process_step(transformed):
    """Adam and lazy_adam under MultiWorkerMirroredStrategy, 2 processes, 2 steps.

    The replicas' summed gradients (each loss divided by the *global* batch)
    must move the weights exactly as one process's step on the whole global
    batch does, and both replicas must hold the same weights afterwards: if a
    replica applied only its own gradient, or the optimizer's (sparse or dense)
    slot update were not mirrored, the weights would differ by about a step
    (the learning rate, 0.01). The model's reported loss must be the global one.
    """
    out = transformed / "step"
    out.mkdir()
    script = str(Path(__file__).with_name("multi_worker_step.py"))
    optimizers = ["adam", "lazy_adam"]
    codes = mw.launch_command([sys.executable, script, str(transformed / "xf"), str(out),
                               *optimizers], 2, str(out / "logs"), timeout=600)
    logs = {p.name: p.read_text()[-3000:] for p in sorted((out / "logs").glob("*.log"))}
    assert codes == [0, 0], logs
    for optimizer in optimizers:
        chief = np.load(out / f"chief-{optimizer}.npz")
        worker = np.load(out / f"worker-{optimizer}.npz")
        assert int(chief["replicas"]) == 2
        n = sum(1 for k in chief.files if k.startswith("initial_"))
        moved = max(float(np.max(np.abs(chief[f"distributed_{i}"] - chief[f"initial_{i}"]),
                                 initial=0.0)) for i in range(n))
        assert moved > 5e-3, (optimizer, moved)  # two steps at lr 0.01 moved the weights
        for i in range(n):
            np.testing.assert_array_equal(chief[f"distributed_{i}"], worker[f"distributed_{i}"],
                                          err_msg=f"{optimizer}: replicas differ")
            # Float summation order only (measured: up to 1.1e-6 on the weights, and
            # one float32 ulp, 1.5e-5, on a scalar near 143).
            np.testing.assert_allclose(chief[f"distributed_{i}"], chief[f"reference_{i}"],
                                       rtol=1e-6, atol=1e-5, err_msg=f"{optimizer}: weight {i}")
        np.testing.assert_allclose(chief["losses"], chief["reference_losses"], rtol=1e-5)


def test_run_fn_trains_the_same_model_whatever_seed_the_process_had(transformed):
    """A fresh `mtrec run` ran the TextEncoder (which seeds TF with 42) in the
    Trainer's process; a resumed one took it from the cache. tf.data seeds a
    shuffle from the global seed of the moment the dataset is built, so the two
    trained different models until run_fn seeded the process itself."""
    import tensorflow as tf

    from mtrec.models.trainer import run_fn

    metrics = []
    for earlier in (42, 7):
        tf.random.set_seed(earlier)  # what an earlier component left behind
        args = _args(transformed, f"seed-{earlier}", None, 2 * PER_REPLICA_BATCH, "lazy_adam")
        os.makedirs(args.model_run_dir, exist_ok=True)
        run_fn(mw.fn_args(args))
        with open(os.path.join(args.model_run_dir, TRAINING_METRICS_FILE)) as f:
            metrics.append(json.load(f))
    for key in ("eval_loss", "eval_rating_rmse", "eval_relevance_auc"):
        assert metrics[0][key] == pytest.approx(metrics[1][key], rel=1e-6), key
    # What the summary and the report read of the file (contracts.artifacts) is there.
    read = {A.TRAIN_SECONDS, A.PHASE_SECONDS, A.TRAIN_EXAMPLES, A.CATALOG_SIZE,
            A.TRAINED_EPOCHS, A.TRAINED_OPTIMIZER, A.TRAINED_PROTOCOL_OVERRIDES, SPLIT_PROTOCOL,
            A.SERVED_REGIME}
    assert read <= set(metrics[0]), read - set(metrics[0])
    assert A.FIT_PHASE in metrics[0][A.PHASE_SECONDS]
