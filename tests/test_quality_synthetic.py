"""Ground truth: on synthetic data with a known latent structure, the trained
model must clearly beat popularity at full-catalogue retrieval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.data import clean, generate
from mtrec.data.examples import write_examples
from mtrec.models.config import ModelConfig
from mtrec.models.evaluation import hit_rates, popularity_ranking
from mtrec.models.trainer import train_and_export
from tests.transform_support import transform_examples

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    # The size of the embedded sample: on much smaller sets the towers overfit
    # before they beat popularity.
    dataset = clean(generate(seed=7)).dataset
    write_examples(dataset, out / "examples")
    tft_output, columns = transform_examples(str(out / "examples"), str(out / "xf"))
    train, held_out = columns["train"], columns["eval"]
    shuffled = (
        tf.data.Dataset.from_tensor_slices(train)
        .shuffle(len(train[F.USER_IDX]), seed=0)
        .batch(512)
    )
    metrics = train_and_export(
        shuffled,
        tf.data.Dataset.from_tensor_slices(held_out).batch(4096),
        tf.data.Dataset.from_tensor_slices(train).batch(8192),
        tft_output,
        ModelConfig.from_dict({"epochs": 8}),
        str(out / "model"),
        catalog_dir=str(out / "examples" / "catalog"),
    )
    return str(out / "model"), train, held_out, metrics


def test_model_clearly_beats_popularity(trained):
    model_dir, train, held_out, _ = trained
    users, row_user = np.unique(held_out[F.USER_ID_XF], return_inverse=True)
    retrieve = tf.saved_model.load(model_dir).signatures["retrieve"]
    ranked = retrieve(user_id=tf.constant(users), k=tf.constant(100))["item_ids"].numpy()
    ks = (10, 100)
    ours = hit_rates(ranked, row_user, held_out[F.ITEM_ID_XF], ks)
    popular = popularity_ranking(train[F.ITEM_ID_XF], 100)[None, :]
    baseline = hit_rates(popular, np.zeros_like(row_user), held_out[F.ITEM_ID_XF], ks)
    # Measured: HR@100 0.52 vs 0.38; HR@10 only level with popularity (0.070 vs
    # 0.068), which is the model's known weak spot (see the quality benchmark).
    assert ours["hit_rate@100"] > 1.25 * baseline["hit_rate@100"], (ours, baseline)
    assert ours["hit_rate@10"] > 0.8 * baseline["hit_rate@10"], (ours, baseline)


def test_rating_head_beats_the_global_mean(trained):
    _, train, held_out, metrics = trained
    mean = train[F.RATING_XF].mean()
    global_rmse = float(np.sqrt(np.mean((held_out[F.RATING_XF] - mean) ** 2)))
    assert metrics["eval_rating_rmse"] < 0.95 * global_rmse


# ------------------------------------------------ benchmarks/served_quality.py
def test_served_quality_rebuilds_the_split_and_measures_the_signatures(
    trained, tmp_path, monkeypatch
):
    """served_quality's code path on the synthetic model: the split it rebuilds from the
    raw data is the one the model was trained on, and every served metric comes out."""
    served_quality = _served_quality()
    model_dir, train, held_out, _ = trained
    dataset = clean(generate(seed=7)).dataset
    truth, _ = served_quality.split_truth(dataset)
    assert len(truth.items) == len(held_out[F.ITEM_ID_XF])
    assert len(truth.train_items) == len(train[F.ITEM_ID_XF])
    rebuilt = zip(truth.users[truth.row_user].tolist(), truth.items.tolist(), strict=True)
    ingested = zip(held_out[F.USER_ID_XF].tolist(), held_out[F.ITEM_ID_XF].tolist(), strict=True)
    assert sorted(rebuilt) == sorted(ingested)
    # main(): the model directory, the raw data (here: the same synthetic set), the files.
    monkeypatch.setattr(served_quality, "load_dataset", lambda *a, **k: generate(seed=7))
    assert served_quality.main([model_dir, "--source", "synthetic", "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "served_quality_synthetic_time.json").read_text())
    model, popularity = payload["results"]["model"], payload["results"]["popularity"]
    for key in ("ndcg@10", "precision@10", "recall@10", "recall@50", "hit_rate@10",
                "hit_rate@50", "hit_rate@100", "coverage@10", "novelty@10", "rmse", "mae"):
        assert np.isfinite(model[key]) and np.isfinite(popularity[key]), key
    assert 0 < model["recall@10"] <= model["recall@50"] <= 1
    # The served retrieve hit rate is the one the test above measures by hand.
    users, row_user = np.unique(held_out[F.USER_ID_XF], return_inverse=True)
    retrieve = tf.saved_model.load(model_dir).signatures["retrieve"]
    ranked = retrieve(user_id=tf.constant(users), k=tf.constant(100))["item_ids"].numpy()
    by_hand = hit_rates(ranked, row_user, held_out[F.ITEM_ID_XF], (100,))["hit_rate@100"]
    assert model["hit_rate@100"] == pytest.approx(by_hand)
    # Served ratings (`score`, latest profile) beat the item means clearly enough.
    assert model["rmse"] < popularity["rmse"], (model, popularity)
    assert (tmp_path / "served_quality_synthetic_time.md").read_text().startswith("# Served")
    # A pseudonymised model measured without the key read as a bad model: it warns.
    signatures = tf.saved_model.load(model_dir).signatures
    assert served_quality.unknown_share(signatures, truth.users) == 0.0
    assert served_quality.unknown_share(signatures, np.array([b"a1b2c3d4e5f6a7b8"])) == 1.0
    with pytest.raises(SystemExit, match=f"error: {tmp_path}/none: no such folder"):
        served_quality.resolve_model_dir(str(tmp_path / "none"))  # was a traceback


def test_served_quality_imports_no_model_code():
    """It loads the SavedModel alone: no mtrec model/export/tower code in the process."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import served_quality; "
        "allowed = {'mtrec.models', 'mtrec.models.evaluation'}; "
        "print(sorted(m for m in sys.modules if m.startswith('mtrec.models') "
        "and m not in allowed))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def _served_quality():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import served_quality

    return served_quality
