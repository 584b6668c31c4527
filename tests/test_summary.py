"""The run summary's paths read as the user gave them."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import tensorflow as tf

from mtrec.contracts import signatures as S
from mtrec.summary import recommendation_rows, render


def _pushed_line(pushed_to: str | None, **summary) -> str:
    text = render({"components": {}, "pushed_to": pushed_to, **summary})
    return next(line for line in text.splitlines() if line.startswith("pushed to:"))


def test_a_push_below_the_working_directory_is_shown_relative(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Pusher records an absolute URI; `make run` was given outputs/sample.
    monkeypatch.chdir(tmp_path)
    pushed = tmp_path / "outputs" / "sample" / "serving_model" / "mtrec" / "17"
    assert _pushed_line(str(pushed)) == "pushed to: outputs/sample/serving_model/mtrec/17"


@pytest.mark.parametrize("uri", ["/elsewhere/serving_model/mtrec/17", "gs://b/mtrec/17"])
def test_a_push_elsewhere_is_shown_as_recorded(
        uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _pushed_line(uri) == f"pushed to: {uri}"


def test_a_push_that_wrote_nothing_new_says_so(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _pushed_line("/m/mtrec/17", already_served=True) == \
        "pushed to: /m/mtrec/17 (already served: no new version)"


def test_a_push_of_an_add_items_version_says_its_items_are_served_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An earlier model pushed again comes with its added items: the line said nothing."""
    monkeypatch.chdir(tmp_path)
    assert _pushed_line("/m/mtrec/19", pushed_extension="17") == (
        "pushed to: /m/mtrec/19 (add-items' version 17 of this model: the items added to it "
        "are served again)")


def test_no_push_says_why() -> None:
    assert _pushed_line(None) == "pushed to: nothing pushed (the run stopped before the Pusher)"
    # A failed Trainer was reported as "not blessed".
    assert _pushed_line(None, components={"Trainer": "FAILED"}) == \
        "pushed to: nothing pushed (component failed: Trainer)"
    assert _pushed_line(None, tfma_blessed=False, tfma_failed=["rating RMSE 1.2 > 1.0"]) == \
        "pushed to: nothing pushed (TFMA did not bless the model (rating RMSE 1.2 > 1.0))"


def test_the_rejects_path_reads_as_the_pushed_path_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = {"counts": {"total": 3, "kept": 3, "rejected": 0},
            "rejects_path": str(tmp_path / "outputs" / "sample" / "rejects.csv"),
            "report": {"rows": {"train": 2, "eval": 1}}}
    text = render({"components": {}, "pushed_to": None, "data": data})
    assert "data: 3 ratings kept, 0 rejected -> outputs/sample/rejects.csv" in text
    data["counts"] = {"total": 5, "kept": 3, "rejected": 2, "duplicate": 1, "bad_rating": 1}
    text = render({"components": {}, "pushed_to": None, "data": data})
    assert ("data: 3 ratings kept, 2 rejected (bad_rating 1, duplicate 1) -> "
            "outputs/sample/rejects.csv") in text
    assert "splits: train 2, eval 1" in text.splitlines()
    data["report"]["split_rule"] = "per-user time, latest 0.2 to eval"
    text = render({"components": {}, "pushed_to": None, "data": data})
    assert "splits: train 2, eval 1 (per-user time, latest 0.2 to eval)" in text.splitlines()
    # One order, whichever split is larger (a tiny log's catalogue outnumbered its eval).
    data["report"]["rows"] = {"catalog": 8, "eval": 5, "train": 25}
    text = render({"components": {}, "pushed_to": None, "data": data})
    assert "splits: train 25, eval 5, catalog 8 (per-user time" in text


@pytest.mark.parametrize("states, line", [
    ({}, "components: none ran"),
    ({"Trainer": "COMPLETE", "Transform": "COMPLETE"}, "components (2): 2 COMPLETE"),
    # A re-run: the few that ran again are named, the cached majority counted.
    ({"Transform": "CACHED", "Trainer": "CACHED", "Evaluator": "COMPLETE",
      "AtomicPusher": "COMPLETE", "StatisticsGen": "CACHED"},
     "components (5): 3 CACHED; COMPLETE: AtomicPusher, Evaluator"),
    ({"ImportExampleGen": "COMPLETE", "Transform": "COMPLETE", "Trainer": "FAILED"},
     "components (3): 2 COMPLETE; FAILED: Trainer"),
])
def test_the_components_line_counts_the_common_state_and_names_the_rest(
        states: dict[str, str], line: str) -> None:
    assert line in render({"components": states, "pushed_to": None}).splitlines()


def test_data_without_genres_says_the_interest_task_was_left_out() -> None:
    # Keras' AUC of labels without a positive is 0: no genre is no 0.0000 AUC (and since
    # `mtrec run` drops the task then, no AUC at all).
    training = {"eval_interest_auc": 0.0, "train_examples": 2, "epochs": 1,
                "train_seconds": 1.0, "catalog_size": 2}
    report = {"rows": {"train": 2}, "n_items_with_genres": 0}
    data = {"counts": {"total": 2, "kept": 2, "rejected": 0}, "rejects_path": "r.csv",
            "report": report}
    lines = render({"components": {}, "pushed_to": None, "data": data,
                    "training": training}).splitlines()
    assert "interest (eval split): no item has genres, so the interest task was left out" \
        in lines
    report.update({"n_items_with_genres": 2, "n_genres": 1})  # AUC has no negatives
    lines = render({"components": {}, "pushed_to": None, "data": data,
                    "training": training}).splitlines()
    assert "interest (eval split): the items have one genre, so the interest task was left " \
        "out" in lines
    del report["n_genres"]
    report["n_items_with_genres"] = 3
    lines = render({"components": {}, "pushed_to": None, "data": data,
                    "training": training}).splitlines()
    assert "interest (eval split): genre AUC 0.0000" in lines
    assert not any(line.startswith("text encoder") for line in lines)  # not known: silent
    report["n_items_with_text"] = 0
    lines = render({"components": {}, "pushed_to": None, "data": data,
                    "training": training}).splitlines()
    assert "text encoder: off: no item has a title, genres, a year or a description" in lines


class _Signature:
    """`recommend` of a user with 2 unseen items asked for 4: two padding rows."""

    def __call__(self, user_id, k):
        return {S.ITEM_IDS: tf.constant([[b"i3", b"i1", b"i0", b"i2"]]),
                S.SCORES: tf.constant([[2.5, 1.0, S.EXCLUDED_SCORE, S.EXCLUDED_SCORE]]),
                S.RATINGS: tf.constant([[4.2, 3.1, 1.5, 3.0]])}


def test_the_example_user_lists_only_real_answers() -> None:
    model = types.SimpleNamespace(signatures={S.RECOMMEND: _Signature()})
    assert recommendation_rows(model, "u1", 4) == [
        {"item_id": "i3", "score": 2.5, "rating": 4.2},
        {"item_id": "i1", "score": 1.0, "rating": 3.1},
    ]


def test_implicit_feedback_says_tfma_has_no_labels_instead_of_zeros() -> None:
    data = {"counts": {"total": 2, "kept": 2, "rejected": 0}, "rejects_path": "r.csv",
            "report": {"rows": {"train": 2}, "rating_values": 1}}
    tfma = {"rating RMSE": 0.0, "relevance AUC (like vs not)": 0.0}
    lines = render({"components": {}, "pushed_to": None, "data": data,
                    "tfma": tfma}).splitlines()
    assert ("rating/relevance (TFMA, eval split): every rating is the same value (implicit "
            "feedback), so there are no rating or like labels to measure; the served-path "
            "gate decides") in lines
    data["report"]["rating_values"] = 9
    lines = render({"components": {}, "pushed_to": None, "data": data,
                    "tfma": tfma}).splitlines()
    assert ("rating/relevance (TFMA, eval split): rating RMSE 0.0000, relevance AUC (like vs "
            "not) 0.0000") in lines


def test_a_refused_relative_gate_says_its_standard_error() -> None:
    """On 8 eval users a lift of 0.03 below a 0.05 bound is mostly noise: the line says
    how much (the RetrievalEvaluator's `_stderr` metrics)."""
    metrics = {"hit_rate@10": 1.0, "popularity_hit_rate@10": 1.0, "ndcg@10": 0.595,
               "popularity_ndcg@10": 0.577, "precision@10": 0.1, "ndcg@10_lift": 0.032,
               "ndcg@10_lift_stderr": 0.21, "eval_users": 8}
    retrieval = {"metrics": metrics, "failed": {"ndcg@10_lift": [0.032, 0.05]}}
    lines = render({"components": {}, "pushed_to": None, "retrieval": retrieval}).splitlines()
    assert ("retrieval gate failed: ndcg@10_lift 0.032 < 0.05 (standard error 0.210 over 8 "
            "eval users: within noise)") in lines
    metrics["ndcg@10_lift_stderr"] = float("nan")  # one eval user: none
    del metrics["eval_users"]
    lines = render({"components": {}, "pushed_to": None, "retrieval": retrieval}).splitlines()
    assert "retrieval gate failed: ndcg@10_lift 0.032 < 0.05" in lines
    # One user, every unseen item held out: model and chance both 1.0 (a float's -1e-16).
    retrieval["failed"] = {"ndcg@10_chance_lift": [-1e-16, 0.05]}
    lines = render({"components": {}, "pushed_to": None, "retrieval": retrieval}).splitlines()
    assert "retrieval gate failed: ndcg@10_chance_lift 0.000 < 0.05" in lines


def test_the_served_line_names_the_random_order_the_gate_compares_with() -> None:
    """A reader weighs NDCG@10 against what a random order of the unseen items scores
    (the chance gate's bound), not against 0; a summary from before that metric still
    renders."""
    metrics = {"hit_rate@10": 0.1, "popularity_hit_rate@10": 0.06, "ndcg@10": 0.524,
               "popularity_ndcg@10": 0.145, "chance_ndcg@10": 0.0214, "precision@10": 0.406,
               "baseline_ndcg@10": 0.51}
    lines = render({"components": {}, "pushed_to": None,
                    "retrieval": {"metrics": metrics}}).splitlines()
    assert ("served (recommend, seen items excluded): NDCG@10 0.524 (popularity 0.145, "
            "random order 0.021, last pushed 0.510), P@10 0.406") in lines
    del metrics["chance_ndcg@10"]
    lines = render({"components": {}, "pushed_to": None,
                    "retrieval": {"metrics": metrics}}).splitlines()
    assert ("served (recommend, seen items excluded): NDCG@10 0.524 (popularity 0.145, "
            "last pushed 0.510), P@10 0.406") in lines
