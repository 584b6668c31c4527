"""The end-to-end tests' pipeline: a tiny synthetic sample, run as `mtrec run` runs it.

Shared by test_pipeline_e2e.py (one run and what it produced) and
test_pipeline_e2e_inputs.py (inputs that must stop a run, or still reach a push).
"""

from __future__ import annotations

import io
import os

from mtrec.console import RunConsole
from mtrec.data import clean, generate
from mtrec.data.examples import write_examples
from mtrec.pipeline import local_runner
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.pipeline.settings import Thresholds
from mtrec.run_state import latest_run

MODEL = {"epochs": 8, "batch_size": 256, "embedding_dim": 32}
# The small scratch encoder keeps this test fast; MiniLM (the default) has its
# own executor and serving tests in components/text_encoder/minilm_test.py.
TEXT = {"mode": "scratch", "pretrain_steps": 60, "hidden_dim": 32, "intermediate_dim": 64,
        "log_every_steps": 20}
LENIENT = {"relevance_auc_min": 0.5, "retrieval": {"hit_rate@100": 0.01}}
EVERY_COMPONENT = {
    "ImportExampleGen", "CatalogExampleGen", "TextEncoder", "StatisticsGen", "SchemaGen",
    "CuratedSchemaGen", "ExampleValidator",
    "AnomalyGate", "Transform", "Trainer", "Evaluator", "RetrievalEvaluator", "AtomicPusher",
}


def examples(root, **overrides):
    dataset = clean(generate(n_users=150, n_items=200, n_ratings=6000, seed=3)).dataset
    if overrides:
        users = dataset.users.copy()
        for column, value in overrides.items():
            users[column] = value
        dataset = type(dataset)(dataset.name, dataset.ratings, users, dataset.items,
                                dataset.malformed)
    write_examples(dataset, root)
    return str(root)


def versions(paths: LocalPaths) -> list[str]:
    base = paths.serving_model_dir
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def run_pipeline(paths, examples_root, **thresholds):
    """One pipeline run inside `mtrec run`'s console; its terminal output in console.txt."""
    settings = local_runner.settings(paths, examples_root=examples_root, model=MODEL,
                                     text_encoder=TEXT, workers=2,
                                     thresholds=Thresholds(**{**LENIENT, **thresholds}))
    terminal = io.StringIO()
    try:
        with RunConsole(paths.home, terminal=terminal) as console:
            try:
                local_runner.run(paths, settings)
            except Exception as err:
                console.failure(err)
                raise
    finally:
        with open(os.path.join(paths.home, "console.txt"), "w") as f:
            f.write(terminal.getvalue())
    return latest_run(paths.metadata_path)


def console_text(paths) -> str:
    with open(os.path.join(paths.home, "console.txt")) as f:
        return f.read()
