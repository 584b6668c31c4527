"""Save -> load in a fresh TensorFlow-only process -> identical outputs -> signature inputs.

The pattern of keras-rs' test_case and Merlin's model_test: the exported
SavedModel is what TF Serving runs, with no Python of ours.
"""

from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts.signatures import SIGNATURES
from mtrec.models import sparse_item_item, trainer
from mtrec.models.config import RATING, RELEVANCE, ModelConfig
from mtrec.models.serving_module import ServingModule
from mtrec.models.serving_tables import user_row_table, user_rows
from mtrec.models.trainer import train_and_export
from tests.export_support import (
    EXPECTED_INPUTS,
    catalogue_title,
    signature_calls,
    signature_inputs,
)
from tests.export_support import replay as _replay  # tests/test_cold_items.py imports it here
from tests.transform_support import as_dataset

UNCACHED = "-uncached"
# The same model with the item-item term off, first stage exact / by the IVF index.
EXACT, IVF = "-exact", "-ivf"
# The same model with the item-item term's top-K rows (models/sparse_item_item.py),
# K above the catalogue: it must answer as the dense term does.
SPARSE = "-sparse"
# The served P(like)'s logit weight, set before every export: the fit gives 0 (it reads
# the served rating), so all three like_weights are live in what the export answers.
LOGIT_WEIGHT = 0.37
# The ServingModule each export was saved from, by export dir: what it answers in memory.
SAVED_FROM: dict[str, ServingModule] = {}


@pytest.fixture(scope="module")
def exported(transformed_synthetic, tmp_path_factory):
    tft_output, train, eval_rows = transformed_synthetic
    out = str(tmp_path_factory.mktemp("export") / "model")
    # The item-item term on, so every path of the re-ranker is exported and replayed;
    # on X'X alone, as the top-K export it is compared with (SPARSE) fits it.
    config = ModelConfig.from_dict({"epochs": 2, "batch_size": 256, "embedding_dim": 16,
                                    "item_item_weight": 1.0, "item_item_session_mix": 0.0})
    export = trainer.export_serving_model

    def also_uncached(model, tft_output, tables, serving_dir, item_text=None):
        _, rating_weight, shift = model.like_weights.numpy()  # as calibrate_likes fitted
        model.like_weights.assign([LOGIT_WEIGHT, rating_weight, shift])
        # Titles as a catalogue's would come (train_and_export reads none without one).
        tables.item_titles = {i: catalogue_title(i.decode()) for i in tables.item_ids.tolist()}
        # The same trained model, also exported without the per-user cache, and
        # without the item-item term with and without the IVF first stage (one
        # cluster probed of sqrt(80) = 9, so recommend's 80 candidates fall back).
        export(model, tft_output, tables, serving_dir + UNCACHED, item_text, cache_users=False)
        trained = model.config
        for suffix, ivf_min_items in ((EXACT, 0), (IVF, 1)):
            model.config = dataclasses.replace(trained, item_item_weight=0.0, ivf_nprobe=1,
                                               ivf_min_items=ivf_min_items)
            export(model, tft_output, tables, serving_dir + suffix, item_text)
        model.config = dataclasses.replace(trained, item_item_top_k=1000)
        with pytest.MonkeyPatch.context() as dense_limit:
            dense_limit.setattr(sparse_item_item, "dense_item_item", lambda *_: False)
            export(model, tft_output, tables, serving_dir + SPARSE, item_text)
        model.config = trained
        SAVED_FROM[serving_dir] = export(model, tft_output, tables, serving_dir, item_text)
        return SAVED_FROM[serving_dir]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "export_serving_model", also_uncached)
        metrics = train_and_export(
            as_dataset(train, 256), as_dataset(eval_rows, 512), as_dataset(train, 1000),
            tft_output, config, out,
        )
    users = sorted({r["user_id_raw"].decode() for r in train})[:3] + ["never-seen-user"]
    items = sorted({r["item_id_raw"].decode() for r in train})[:4] + ["never-seen-item"]
    return out, metrics, users, items, train


@pytest.fixture(scope="module")
def replayed(exported) -> dict[str, list[dict]]:
    """Every export of the fixture, replayed once: one process start instead of four."""
    out, _, users, items, _ = exported
    return _replay([out + suffix for suffix in ("", UNCACHED, EXACT, IVF, SPARSE)],
                   signature_calls(users, items, _known_users(exported)))


def _known_users(exported) -> list[str]:
    return sorted({r["user_id_raw"].decode() for r in exported[4]})


def test_fresh_process_gives_identical_predictions(exported, replayed):
    """Save -> reload -> identical predictions: every signature (SIGNATURES), answered
    by the in-memory ServingModule the export was saved from and by the SavedModel
    loaded in a fresh TensorFlow-only process: the same ids, titles, genres and integer
    features; floats within rtol 1e-5 / atol 1e-6 (float32). A weight, table or variable
    missing from the export, or saved stale, answers otherwise."""
    out, _, users, items, _ = exported
    calls = signature_calls(users, items, _known_users(exported))
    assert {name for name, _ in calls} == set(SIGNATURES) == set(EXPECTED_INPUTS)
    fresh, saved_from = replayed[out], SAVED_FROM[out]
    for call, (name, kwargs) in enumerate(calls):
        served = getattr(saved_from, name)(**signature_inputs(name, kwargs))
        assert set(served) == set(fresh[call]), name
        for key, value in served.items():
            if value.dtype == tf.string:
                assert value.numpy().astype(str).tolist() == fresh[call][key], (name, key)
            elif value.dtype.is_integer or value.dtype == tf.bool:
                assert value.numpy().tolist() == fresh[call][key], (name, key)
            else:
                np.testing.assert_allclose(value.numpy(), fresh[call][key], rtol=1e-5,
                                           atol=1e-6, err_msg=f"{name}.{key}")


def test_served_p_like_reads_the_fitted_like_weights(exported, replayed):
    """serving_default's relevance in a fresh process is sigmoid(a * logit + b * rating
    + c): a the fixture's LOGIT_WEIGHT, (b, c) the fit calibrate_likes reported, logit
    and rating the in-memory model's. An export without like_weights (the identity
    (1, 0, 0)), with them stale, or ignoring one of them answers otherwise."""
    out, metrics, users, items, _ = exported
    calls = signature_calls(users, items)
    names = [name for name, _ in calls]
    at = names.index("serving_default")
    fresh = replayed[out][at]
    fitted_logit_weight, b, c = metrics["like_calibration"]
    assert fitted_logit_weight == 0 and b > 0
    saved_from = SAVED_FROM[out]
    xf = saved_from.transform_features(**signature_inputs("serving_default", calls[at][1]))
    model = saved_from.model
    pair = model.pair_outputs(model.query_embedding(xf), model.candidate_embedding(xf),
                              xf[F.USER_IDX], xf[F.ITEM_IDX])
    logit = pair[RELEVANCE].numpy().astype(np.float64)
    rating = model.served_rating(pair[RATING], xf[F.USER_IDX], xf[F.ITEM_IDX]).numpy()
    np.testing.assert_allclose(fresh[F.OUT_RATING], rating, rtol=1e-5, atol=1e-6)
    want = 1 / (1 + np.exp(-(LOGIT_WEIGHT * logit + b * rating + c)))
    np.testing.assert_allclose(fresh[F.OUT_RELEVANCE], want, rtol=1e-5, atol=1e-6)
    for a, b_, c_ in ((0.0, b, c), (1.0, 0.0, 0.0)):  # the fit alone; the identity
        other = 1 / (1 + np.exp(-(a * logit + b_ * rating + c_)))
        assert np.abs(other - want).max() > 1e-3


def test_describe_items_gives_the_catalogue_titles_in_a_fresh_process(exported, replayed):
    """The title table survives save -> load with TensorFlow alone: known ids get their
    title, an id outside the catalogue and the padding "" get ""."""
    out, _, users, items, _ = exported
    names = [name for name, _ in signature_calls(users, items, _known_users(exported))]
    titles = replayed[out][names.index("describe_items")]["titles"]
    known = [catalogue_title(i) for i in items[:-1]]  # items[-1] is never-seen-item
    assert titles == [known + ["", ""], ["", *known[::-1], ""]]


def test_signatures_and_their_inputs(exported):
    out = exported[0]
    model = tf.saved_model.load(out)
    assert set(SIGNATURES) <= set(model.signatures)
    for name, inputs in EXPECTED_INPUTS.items():
        spec = model.signatures[name].structured_input_signature[1]
        assert {k: v.dtype for k, v in spec.items()} == inputs, name
    assert os.path.exists(os.path.join(out, "assets.extra", "tf_serving_warmup_requests"))


def test_training_metrics_say_what_ran_and_where_the_time_went(exported):
    metrics = exported[1]
    assert metrics["optimizer"] == "adam"  # "auto" on a tiny vocabulary
    phases = metrics["phase_seconds"]
    assert set(phases) == {"scan", "build", "fit", "evaluate", "export"}
    assert all(v >= 0 for v in phases.values())
    assert 0 < phases["fit"] <= metrics["train_seconds"]
    # The reported P(like) is fitted on the served rating, increasing in it
    # (tests/test_like_calibration.py).
    logit_weight, rating_weight, _ = metrics["like_calibration"]
    assert logit_weight == 0 and rating_weight > 0


def test_export_carries_no_optimizer_state(exported):
    """Adam's two slots per weight doubled every id table in the SavedModel (scale.md)."""
    out = exported[0]
    checkpoint = os.path.join(out, "variables", "variables")
    names = [name for name, _ in tf.train.list_variables(checkpoint)]
    assert any(name.startswith("model/") and name.endswith("VARIABLE_VALUE") for name in names)
    assert not [name for name in names if "optimizer" in name]


def test_unknown_ids_get_finite_answers_and_recommend_excludes_seen(exported):
    out, _, users, items, train = exported
    model = tf.saved_model.load(out)
    rec = model.signatures["recommend"](user_id=tf.constant(users), k=tf.constant(10))
    assert np.isfinite(rec["scores"].numpy()).all() and np.isfinite(rec["ratings"].numpy()).all()
    seen = {r["item_id_raw"] for r in train if r["user_id_raw"].decode() == users[0]}
    assert not seen & set(rec["item_ids"].numpy()[0].tolist())
    scores = model.signatures["score"](user_id=tf.constant(users[-1:]),
                                       item_ids=tf.constant([items]))
    for value in scores.values():
        assert np.isfinite(value.numpy()).all()
    ratings = scores["ratings"].numpy()
    trained = [r["rating_label"] for r in train]  # served ratings stay in the training range
    assert ((ratings >= min(trained)) & (ratings <= max(trained))).all()
    interest = model.signatures["user_interest"](user_id=tf.constant(users))
    probs = interest["scores"].numpy()
    assert (np.diff(probs, axis=1) <= 1e-7).all()  # ranked, best genre first


def test_embeddings_reproduce_retrieve_scores(exported):
    """An external index over embed_user . embed_item scores exactly like `retrieve`."""
    out, _, users, _, _ = exported
    model = tf.saved_model.load(out)
    top = model.signatures["retrieve"](user_id=tf.constant(users), k=tf.constant(5))
    queries = model.signatures["embed_user"](user_id=tf.constant(users))["embedding"].numpy()
    for row, query in enumerate(queries):
        items = model.signatures["embed_item"](item_id=top["item_ids"][row])["embedding"]
        np.testing.assert_allclose(
            items.numpy() @ query, top["scores"].numpy()[row], rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("k", [0, -1, 10_000])
def test_bad_k_is_an_invalid_argument(exported, k):
    model = tf.saved_model.load(exported[0])
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must"):
        model.signatures["recommend"](user_id=tf.constant(["u1"]), k=tf.constant(k))


def test_score_agrees_with_recommend_on_what_it_recommends(exported):
    """The first stage (similarity + item-item term) and the blend are the same in both,
    for known users; an unknown id gets the most popular items, scored log P(item)
    (models/light_users.py), with the ratings `score` gives them."""
    out, _, users, _, train = exported
    model = tf.saved_model.load(out)
    rec = model.signatures["recommend"](user_id=tf.constant(users), k=tf.constant(5))
    scored = model.signatures["score"](user_id=tf.constant(users), item_ids=rec["item_ids"])
    known = users.index("never-seen-user")
    np.testing.assert_allclose(scored["scores"][:known], rec["scores"][:known], rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(scored["ratings"][:known], rec["ratings"][:known], rtol=1e-5,
                               atol=1e-5)
    # recommend rates them for recommend_from_items' unknown user (row 0), score for the
    # id's own OOV row: both untrained ids, a few thousandths apart.
    np.testing.assert_allclose(scored["ratings"][known], rec["ratings"][known], atol=0.02)
    counts = collections.Counter(r["item_id_raw"] for r in train)
    popular = rec["item_ids"].numpy()[known].tolist()
    assert [counts[i] for i in popular] == sorted(counts.values(), reverse=True)[:5]
    assert (np.diff(rec["scores"].numpy()[known]) <= 0).all()


def test_recommend_from_items_skips_what_it_was_given_and_ignores_unknown_items(exported):
    out, _, _, items, _ = exported
    model = tf.saved_model.load(out)
    fn = model.signatures["recommend_from_items"]
    known = items[:4]
    rec = fn(item_ids=tf.constant([known, known[:1] + ["", "", ""]]), k=tf.constant(10))
    assert rec["item_ids"].shape == (2, 10)
    assert not {i.encode() for i in known} & set(rec["item_ids"].numpy()[0].tolist())
    assert known[0].encode() not in rec["item_ids"].numpy()[1].tolist()
    assert np.isfinite(rec["scores"].numpy()).all()
    # Unknown ids are ignored: the same answer as without them, and as an empty request.
    with_unknown = fn(item_ids=tf.constant([known[:1] + ["never-seen-item"]]), k=tf.constant(10))
    alone = fn(item_ids=tf.constant([known[:1] + [""]]), k=tf.constant(10))
    assert with_unknown["item_ids"].numpy().tolist() == alone["item_ids"].numpy().tolist()
    nothing = fn(item_ids=tf.constant([["never-seen-item"], [""]]), k=tf.constant(3))
    assert nothing["item_ids"].numpy()[0].tolist() == nothing["item_ids"].numpy()[1].tolist()
    # The items given change the answer: a profile is personal.
    other = fn(item_ids=tf.constant([items[2:4]]), k=tf.constant(10))
    assert other["item_ids"].numpy().tolist() != alone["item_ids"].numpy().tolist()


def test_per_user_cache_changes_no_answer(exported, replayed):
    """The export's per-user tables (models/serving_ops.py) and answer cache
    (models/answer_cache.py) against the same trained model exported without them,
    each in a fresh process: the same item ids and genres; scores within rtol 1e-5 /
    atol 1e-5 (batched vs one-row float32 maths). `recommend` for every fixture user
    at k = 1, 10, 25 (answered from the cache) and 26 (above its depth), and for
    unknown ids (computed)."""
    out, _, users, items, _ = exported
    cached, uncached = tf.saved_model.load(out), tf.saved_model.load(out + UNCACHED)
    assert cached.user_queries.shape[0] > len(users) and cached.user_item_item is not None
    assert cached.user_seen.dtype == tf.bool
    # One row per known user (and the padding row), 25 entries: every k <= 25.
    assert cached.answers.tables["item_ids"].shape == (len(_known_users(exported)) + 1, 25)
    for table in ("user_queries", "user_item_item", "user_seen", "answers"):
        assert getattr(uncached, table, None) is None
    _assert_same_answers(replayed[out], replayed[out + UNCACHED])
    cached_rows = [r for r in replayed[out] if len(r.get("item_ids", ())) > len(users)]
    assert [len(r["item_ids"][0]) for r in cached_rows] == [1, 10, 25, 26]


def _assert_same_answers(fast: list[dict], reference: list[dict]) -> None:
    assert len(fast) == len(reference)
    for call, outputs in enumerate(reference):
        for key, value in outputs.items():
            if value and isinstance(np.ravel(value)[0], str):
                assert fast[call][key] == value, (call, key)
            else:
                np.testing.assert_allclose(fast[call][key], value, rtol=1e-5, atol=1e-5,
                                           err_msg=f"call {call}: {key}")


def test_the_top_k_item_item_export_answers_as_the_dense_one(exported, replayed):
    """Past item_item.dense_item_item's limits (patched here) the export keeps B's top-K rows
    (models/sparse_item_item.py); with K above the catalogue, in a fresh process, it
    answers every signature as the dense term does (recommend_from_items scores its
    bag in the graph; the per-user table is compared directly): same ids, scores
    within rtol/atol 1e-5, the same rated columns. One export, not two (the
    uncached one runs the same TopKItemItem.scores): make test's time budget."""
    out = exported[0]
    dense, sparse = tf.saved_model.load(out), tf.saved_model.load(out + SPARSE)
    assert sparse.item_item.neighbours.shape[1] < 1000
    np.testing.assert_array_equal(sparse.item_item_rated.numpy(), dense.item_item_rated.numpy())
    np.testing.assert_allclose(sparse.user_item_item.numpy(), dense.user_item_item.numpy(),
                               atol=1e-4)
    _assert_same_answers(replayed[out + SPARSE], replayed[out])


def test_the_ivf_export_changes_no_answer_when_it_falls_back(exported, replayed):
    """An export with the IVF first stage (models/ivf.py) against the exact one, in
    fresh processes: with fewer unseen items in the probed cluster than the re-rank
    reads, recommend takes the exact scan (tf.cond), so the same ids; scores within
    rtol/atol 1e-5. The index's own answers are tested in tests/test_ivf.py."""
    out = exported[0]
    ivf, exact = tf.saved_model.load(out + IVF), tf.saved_model.load(out + EXACT)
    assert ivf.ivf.centroids.shape[0] == 9 and ivf.ivf.positions.shape[0] == 80
    assert not hasattr(exact, "ivf") or exact.ivf is None
    _assert_same_answers(replayed[out + IVF], replayed[out + EXACT])


def test_the_user_row_lookup_is_the_transform_layers(transformed_synthetic):
    """The export's user_id -> row table (serving_tables.user_row_table) gives the
    Transform layer's F.USER_IDX for every known id and for unknown ones (OOV hashing)."""
    tft_output = transformed_synthetic[0]
    known = [t.decode() for t in tft_output.vocabulary_by_name(F.USER_VOCAB)]
    ids = tf.constant(known + [f"new-{i}" for i in range(40)] + [""])
    want = tft_output.transform_features_layer()({F.USER_ID: ids[:, None]})[F.USER_IDX]
    got = user_rows(user_row_table(tft_output), ids).numpy()
    assert got.tolist() == want.numpy().tolist()
    assert len(set(got[len(known):].tolist())) == F.USER_OOV  # the buckets are all used


def test_the_cached_item_item_term_is_centred_and_zero_outside_the_catalogue(exported):
    """Per user, the term is standardised over the items with training ratings (all
    of this catalogue: mean 0), and an item outside the catalogue, with neither a
    rating nor a similarity, gets 0 (models/item_item.item_item_term)."""
    out, *_ = exported
    model = tf.saved_model.load(out)
    rated, term = model.item_item_rated.numpy(), model.user_item_item.numpy()
    assert rated[:-1].all() and not rated[-1]
    assert np.abs(term).max() > 0.1
    np.testing.assert_array_equal(term[:, -1], 0.0)
    np.testing.assert_allclose(term[:, :-1].mean(axis=1), 0.0, atol=1e-4)
