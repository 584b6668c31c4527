"""What the Kubeflow V2 compile tests share: the CLI arguments and spec readers."""

from __future__ import annotations

import json

from mtrec.cli import build_parser
from mtrec.cli import main as cli_main
from mtrec.commands.compile import settings_from_args, split_beam_args
from mtrec.pipeline import kubeflow_v2_runner as kfv2

IMAGE = "europe-west4-docker.pkg.dev/proj/repo/mtrec:test"
BEAM_ARGS = (
    "--runner=DataflowRunner",
    "--project=proj",
    "--region=europe-west4",
    "--temp_location=gs://bucket/tmp",
)
EXAMPLES_ROOT = "gs://bucket/examples"
MODEL_CONFIG = {"embedding_dim": 32}
COMPONENTS = {
    "ImportExampleGen",
    "CatalogExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "CuratedSchemaGen",
    "ExampleValidator",
    "AnomalyGate",
    "Transform",
    "Trainer",
    "Evaluator",
    "RetrievalEvaluator",
    "AtomicPusher",
}
# KFP v2 splits the latest-blessed-model resolver into two resolver tasks.
RESOLVER_TASKS_BY_ROLE = {
    "blessing": "latest_blessed_model_resolver-model-blessing-resolver",
    "model": "latest_blessed_model_resolver-model-resolver",
}
RESOLVER_TASKS = set(RESOLVER_TASKS_BY_ROLE.values())
# The TextEncoder is compiled in its own test (see there).
NO_TEXT = ["--no-text-encoder"]
CLI_ARGS = [
    "--image", IMAGE,
    "--pipeline-root", "gs://bucket/root",
    "--examples-root", EXAMPLES_ROOT,
    "--serving-model-dir", "/models/mtrec",
    "--serving-pvc", "mtrec-pusher-base",
    "--model-config", json.dumps(MODEL_CONFIG),
    "--epochs", "3",
    "--distribution", "multi_worker_mirrored",
    "--rating-rmse-max", "1.2",
    "--relevance-auc-max-decrease", "0.02",
    "--retrieval-thresholds", '{"hit_rate@50": 0.1}',
]  # fmt: skip


def compile_spec(argv: list[str]) -> None:
    assert cli_main(["compile", *argv]) == 0


def parse_compile(argv: list[str]) -> tuple[kfv2.KubeflowSettings, str]:
    """(settings, output path) as `mtrec compile ARGV` builds them."""
    own, beam = split_beam_args(argv)
    args = build_parser().parse_args(["compile", *own])
    args.beam_args = beam
    return settings_from_args(args), args.output


def tasks_of(spec: dict) -> dict:
    return spec["root"]["dag"]["tasks"]


def containers_of(spec: dict) -> dict[str, dict]:
    executors = spec["deploymentSpec"]["executors"]
    return {label: ex["container"] for label, ex in executors.items() if "container" in ex}
