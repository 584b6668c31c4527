"""The compiled KFP v2 spec, executed: every task's container command, run here.

`pipeline/kfp_local.py` plays the KFP backend's part (ExecutorInput in, the
ExecutorOutput's artifacts passed on, the Pusher's trigger condition); the
commands and arguments are the spec's own. test_kfp_local_backend.py checks
that part on hand-written specs; here `mtrec compile` compiles the pipeline
for a tiny synthetic sample and all of it runs, the Trainer also as a TFJob
and as a Vertex job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from google.cloud.aiplatform_v1.types.job_state import JobState
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.extensions.google_cloud_ai_platform import training_clients
from tfx.orchestration.kubeflow.v2.container import (
    kubeflow_v2_entrypoint_utils as entrypoint_utils,
)
from tfx.utils import path_utils

from mtrec.cli import main as cli_main
from mtrec.components.trainer import multi_worker as mw
from mtrec.components.trainer import tfjob
from mtrec.components.trainer.vertex import VertexExecutor, VertexTraining
from mtrec.contracts.artifacts import TRAINING_METRICS_FILE, WEIGHTS_CONFIG_FILE, WEIGHTS_DIR
from mtrec.contracts.pipeline import (
    BASELINE_RESOLVER,
    CONFIG_DISTRIBUTION,
    EVAL_SPLIT,
    SPLIT_PROTOCOL,
    TRAIN_SPLIT,
)
from mtrec.data import clean, generate
from mtrec.data.examples import write_examples
from mtrec.data.splits import RANDOM_PROTOCOL
from mtrec.data.tables import SPLIT
from mtrec.models.config import ModelConfig, protocol_overrides
from mtrec.pipeline import configs, kfp_local

ROOT = Path(__file__).resolve().parents[1]
def _image_env() -> dict[str, str]:
    """The Dockerfile's ENV: what the image adds to every task's environment."""
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    (env_line,) = [line for line in lines if line.startswith("ENV ")]
    return dict(pair.split("=", 1) for pair in env_line.split()[1:])


@pytest.fixture(scope="module")
def kfp_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("kfp")
    dataset = clean(generate(n_users=150, n_items=200, n_ratings=6000, seed=3)).dataset
    # A split column drawn at random (as ML-100K's u1..u5): the random protocol, whose
    # model settings differ from the defaults, so the Trainer must settle them at run time.
    draw = np.random.default_rng(0).random(len(dataset.ratings)) < 0.2
    ratings = dataset.ratings.assign(**{SPLIT: np.where(draw, EVAL_SPLIT, TRAIN_SPLIT)})
    dataset = type(dataset)(dataset.name, ratings, dataset.users, dataset.items,
                            dataset.malformed)
    assert write_examples(dataset, str(home / "examples"))["split_protocol"] == RANDOM_PROTOCOL
    spec_path = home / "mtrec.yaml"
    assert cli_main([
        "compile", "--image", "mtrec:test",
        "--pipeline-root", str(home / "root"),
        # The data_root parameter's default is never read: the run overrides it.
        "--examples-root", str(home / "not-the-examples"),
        "--serving-model-dir", str(home / "serving"),
        "--schema-path", str(ROOT / "pipeline" / "schema" / "schema.pbtxt"),
        "--model-config", json.dumps({"batch_size": 256, "embedding_dim": 32}),
        "--epochs", "4",
        "--text-encoder", json.dumps({"mode": "scratch", "pretrain_steps": 20,
                                      "hidden_dim": 32, "intermediate_dim": 64}),
        "--relevance-auc-min", "0.5",
        "--retrieval-thresholds", '{"hit_rate@100": 0.01}',
        "--output", str(spec_path),
    ]) == 0  # fmt: skip
    spec, _ = kfp_local.load_spec(spec_path)
    runs = kfp_local.run_spec(
        spec,
        home / "root" / "run-1",
        env=_image_env(),
        parameters={"data_root": str(home / "examples")},
    )
    return home, spec, {run.name: run for run in runs}


@pytest.mark.e2e
def test_every_compiled_task_runs_and_the_pusher_pushes(kfp_run):
    home, spec, runs = kfp_run
    assert set(runs) == set(spec["root"]["dag"]["tasks"])
    # The latest-blessed-model resolver's two tasks: a first run finds no baseline.
    resolvers = {name for name in runs if name.startswith(BASELINE_RESOLVER)}
    assert len(resolvers) == 2
    assert {runs[name].status for name in resolvers} == {"resolved"}
    assert all(out == [] for name in resolvers for out in runs[name].outputs.values())
    assert {runs[name].status for name in set(runs) - resolvers} == {"succeeded"}
    evaluator_input = json.loads((runs["Evaluator"].log.parent / kfp_local.INPUT_FILE).read_text())
    assert evaluator_input["inputs"]["artifacts"]["baseline_model"] == {"artifacts": []}
    (blessing,) = runs["RetrievalEvaluator"].outputs["blessing"]
    assert blessing["metadata"]["blessed"] == 1.0
    (pushed,) = runs["AtomicPusher"].outputs["pushed_model"]
    assert pushed["metadata"]["pushed"] == 1.0
    (version,) = os.listdir(home / "serving")
    assert pushed["metadata"]["pushed_destination"] == str(home / "serving" / version)


@pytest.mark.e2e
def test_the_trainer_settles_the_split_protocol_of_the_data_given_at_run_time(kfp_run):
    """The spec was compiled without the examples (data_root is set when the run
    starts), so its Trainer config cannot hold the protocol's settings: the ExampleGen
    records the protocol, KFP passes it on in the artifact's metadata, and the trained
    model has the settings `mtrec run` gives the same data."""
    home, spec, runs = kfp_run
    settings = protocol_overrides(RANDOM_PROTOCOL)
    assert settings and settings != {k: getattr(ModelConfig(), k) for k in settings}
    assert "history_dropout" not in json.dumps(spec["root"]["inputDefinitions"])
    for gen in ("ImportExampleGen", "CatalogExampleGen"):
        (examples,) = runs[gen].outputs["examples"]
        assert examples["metadata"][SPLIT_PROTOCOL] == RANDOM_PROTOCOL
    (model_run,) = runs["Trainer"].outputs["model_run"]
    trained = json.loads((Path(model_run["uri"]) / WEIGHTS_DIR / WEIGHTS_CONFIG_FILE).read_text())
    assert {k: trained[k] for k in settings} == settings
    metrics = json.loads((Path(model_run["uri"]) / TRAINING_METRICS_FILE).read_text())
    assert (metrics["split_protocol"], metrics["protocol_overrides"]) == (RANDOM_PROTOCOL, settings)


@pytest.mark.e2e
def test_tasks_ran_our_entrypoint_and_beam_tasks_did_not_package_tfx(kfp_run):
    _, spec, runs = kfp_run
    executors = spec["deploymentSpec"]["executors"].values()
    commands = {e["container"]["command"][-1] for e in executors if "container" in e}
    assert commands == {configs.KFP_TASK_COMMAND[-1]}
    for name in ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        log = runs[name].log.read_text(errors="replace")
        assert "Starting executor" in log, name  # TFX's entrypoint ran the executor
        assert "Attempting to infer TFX Python dependency" not in log, name


@pytest.mark.e2e
def test_the_pushed_model_serves_in_a_fresh_process(kfp_run):
    home, _, _ = kfp_run
    (version,) = os.listdir(home / "serving")
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        m = tf.saved_model.load({str(home / "serving" / version)!r})
        out = m.signatures["recommend"](user_id=tf.constant(["u1"]), k=tf.constant(5))
        print(out["item_ids"].shape)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(1, 5)" in done.stdout


def _trainer_step(home: Path, out: Path, remote: dict) -> tuple[dict, dict, dict]:
    """(inputs, outputs, exec properties) of the compiled spec's Trainer task, parsed
    from the ExecutorInput it ran with as a pod parses it, outputs under `out`,
    and `remote` (a remote-training custom_config) added to its custom_config."""
    invocation = json.loads(
        (home / "root" / "run-1" / "Trainer" / kfp_local.INPUT_FILE).read_text()
    )
    executor_input = json_format.ParseDict(invocation, pipeline_spec_pb2.ExecutorInput())
    inputs = entrypoint_utils.parse_raw_artifact_dict(executor_input.inputs.artifacts)
    outputs = entrypoint_utils.parse_raw_artifact_dict(executor_input.outputs.artifacts)
    for key, (artifact,) in outputs.items():
        artifact.uri = str(out / key)
    properties = dict(invocation["inputs"]["parameterValues"])
    custom = json.loads(properties["custom_config"])
    custom.update({CONFIG_DISTRIBUTION: "multi_worker_mirrored", **remote})
    properties["custom_config"] = json.dumps(custom)
    return inputs, outputs, properties


def _run_replicas(command: list[str], replicas: int, log_dir: Path) -> bool:
    """The replicas' container command, here: one process each, with the TF_CONFIG
    the operator or Vertex sets (first pool/replica type the chief), on loopback."""
    command = [sys.executable if c == "python" else c for c in command]
    return set(mw.launch_command(command, replicas, str(log_dir), timeout=900)) == {0}


def _assert_two_replicas_trained_and_the_chief_exported(log_dir: Path, outputs: dict) -> None:
    chief = (log_dir / "chief-0.log").read_text()
    worker = (log_dir / "worker-0.log").read_text()
    for log in (chief, worker):
        assert "replicas in sync: 2" in log, log[-3000:]
        # The examples' protocol reached every replica through the serialized inputs.
        assert f"split protocol {RANDOM_PROTOCOL}: model overrides {{'history_dropout': 1.0" in log
    assert "not the chief" in worker and "not the chief" not in chief
    (model,) = outputs["model"]
    assert (Path(path_utils.serving_model_path(model.uri)) / "saved_model.pb").exists()


class _LocalTrainingOperator:
    """Stands in for the Kubeflow Training Operator behind CustomObjectsApi: on
    create, runs the TFJob's replicas here; on get, its condition."""

    def __init__(self, log_dir: Path):
        self.log_dir, self.jobs = log_dir, {}

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        specs = body["spec"]["tfReplicaSpecs"]
        (container,) = specs["Chief"]["template"]["spec"]["containers"]
        replicas = sum(spec["replicas"] for spec in specs.values())
        ok = _run_replicas(container["command"], replicas, self.log_dir)
        self.jobs[body["metadata"]["name"]] = "Succeeded" if ok else "Failed"

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        state = self.jobs[name]
        return {"status": {"conditions": [{"type": state, "status": "True", "message": ""}]}}


class _LocalVertexJobService:
    """Stands in for Vertex AI's JobServiceClient (what TFX's Vertex training
    client calls): create_custom_job runs the job's worker pools here (pool 0 the
    chief, pool 1 the workers); get_custom_job reports its state."""

    log_dir = Path("replicas")  # each test sets its own, and `jobs`
    jobs: dict[str, int] = {}

    def __init__(self, client_options=None):
        self.endpoint = (client_options or {}).get("api_endpoint")

    def create_custom_job(self, parent, custom_job):
        pools = custom_job["job_spec"]["worker_pool_specs"]
        (command,) = {tuple(pool["container_spec"]["command"]) for pool in pools}
        ok = _run_replicas(list(command), sum(p["replica_count"] for p in pools), self.log_dir)
        name = f"{parent}/customJobs/{len(self.jobs)}"
        self.jobs[name] = JobState.JOB_STATE_SUCCEEDED if ok else JobState.JOB_STATE_FAILED
        return SimpleNamespace(name=name)

    def get_custom_job(self, name, retry=None):
        return SimpleNamespace(state=self.jobs[name])


@pytest.mark.e2e
def test_the_trainer_as_a_tfjob_trains_on_two_replicas_from_the_pods_inputs(
    kfp_run, tmp_path, monkeypatch
):
    """The Trainer step of `mtrec compile --tfjob-namespace`: TFJobExecutor, given
    the inputs the KFP Trainer task received, creates a TFJob whose chief and
    worker run the manifest's command."""
    remote = tfjob.TFJobTraining(image="mtrec:test", poll_seconds=0).custom_config()
    inputs, outputs, properties = _trainer_step(kfp_run[0], tmp_path, remote)
    operator = _LocalTrainingOperator(tmp_path / "replicas")
    monkeypatch.setattr(tfjob, "_kubernetes_api", lambda: operator)

    tfjob.TFJobExecutor().Do(inputs, outputs, properties)

    assert list(operator.jobs.values()) == ["Succeeded"]
    _assert_two_replicas_trained_and_the_chief_exported(tmp_path / "replicas", outputs)


@pytest.mark.e2e
def test_the_trainer_as_a_vertex_job_trains_on_two_replicas_from_the_pods_inputs(
    kfp_run, tmp_path, monkeypatch
):
    """The Trainer step of `mtrec compile --vertex-training-region`: VertexExecutor
    submits, through TFX's Vertex client and runner, the custom job whose pools
    run our Trainer executor (this run found the missing `project`)."""
    remote = VertexTraining(region="europe-west4", image="mtrec:test", project="proj")
    inputs, outputs, properties = _trainer_step(kfp_run[0], tmp_path, remote.custom_config())
    monkeypatch.setattr(_LocalVertexJobService, "log_dir", tmp_path / "replicas")
    monkeypatch.setattr(_LocalVertexJobService, "jobs", {})
    monkeypatch.setattr(training_clients.gapic, "JobServiceClient", _LocalVertexJobService)

    VertexExecutor().Do(inputs, outputs, properties)

    assert list(_LocalVertexJobService.jobs) == [
        "projects/proj/locations/europe-west4/customJobs/0"
    ]
    _assert_two_replicas_trained_and_the_chief_exported(tmp_path / "replicas", outputs)
