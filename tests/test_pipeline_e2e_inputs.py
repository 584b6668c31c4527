"""End-to-end: inputs that must stop the real pipeline, or still reach a push.

Each test runs its own pipeline (tests/e2e_support.py), apart from
test_pipeline_e2e.py's shared run, so pytest-xdist can run them beside it.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
import tensorflow as tf

from mtrec.components.anomaly_gate.executor import SchemaAnomaliesError
from mtrec.contracts import features as F
from mtrec.data import clean, generate
from mtrec.data.examples import write_examples
from mtrec.data.tables import ITEMS, USERS, make_items, make_users
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.run_state import custom_property, latest_run
from tests.e2e_support import console_text, examples, run_pipeline, versions

pytestmark = pytest.mark.e2e


def test_schema_anomalies_stop_the_run_before_trainer(tmp_path):
    paths = LocalPaths(str(tmp_path))
    examples_root = examples(tmp_path / "examples", age=500)  # outside the schema's 0..120
    with pytest.raises(SchemaAnomaliesError, match="feature 'age'"):
        run_pipeline(paths, examples_root)
    out = console_text(paths)
    assert "] AnomalyGate FAILED after " in out
    assert "error in AnomalyGate: " in out and "feature 'age'" in out
    assert "Traceback" not in out
    nodes = latest_run(paths.metadata_path)
    assert nodes["AnomalyGate"].state == "FAILED"
    assert "Transform" not in nodes and "Trainer" not in nodes
    assert not versions(paths)


def test_interactions_alone_run_to_a_push(tmp_path):
    """A log of interactions alone (`--source generic` without users or items files:
    no titles, genres or years; every rating 1, as clicks or views are) trains, passes
    both gates and is pushed. The export crashed on a catalogue without years, and
    TFMA's bounds on rating RMSE and like AUC, which such a log has no labels for,
    refused every model."""
    paths = LocalPaths(str(tmp_path))
    dataset = clean(generate(n_users=80, n_items=60, n_ratings=2000, seed=5)).dataset
    ids_only = dataclasses.replace(
        dataset, ratings=dataset.ratings.assign(**{F.RATING: 1.0}),
        users=make_users(dataset.users[F.USER_ID]), items=make_items(dataset.items[F.ITEM_ID]),
        derived=frozenset({USERS, ITEMS}))
    report = write_examples(ids_only, tmp_path / "examples")
    assert report["n_items_with_genres"] == 0 and report["rating_values"] == 1
    nodes = run_pipeline(paths, str(tmp_path / "examples"),
                 rating_labels=False)
    assert {name: node.state for name, node in nodes.items() if node.state != "COMPLETE"} == {}
    assert custom_property(nodes["Evaluator"].outputs["blessing"][0], "blessed") == 1
    assert len(versions(paths)) == 1
    # No genres: user_interest lists none (it listed tf.Transform's empty-vocabulary
    # placeholder, '49d0cd50-...', at P 0.5: serving_tables.genre_vocabulary).
    served = tf.saved_model.load(os.path.join(paths.serving_model_dir, versions(paths)[0]))
    interest = served.signatures["user_interest"](user_id=tf.constant(["u1", "nobody"]))
    assert interest["genres"].shape == (2, 0) and interest["scores"].shape == (2, 0)
