"""The short report printed at the end of `mtrec run`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, TypedDict

from mtrec.components.atomic_pusher.executor import newest_serving
from mtrec.components.retrieval_evaluator.gate_notes import (
    failure_lines,
    failure_tag,
    gate_value,
)
from mtrec.components.text_encoder.export import load_metadata
from mtrec.contracts import artifacts as A
from mtrec.contracts import pipeline as P
from mtrec.contracts import signatures as S
from mtrec.contracts.metrics import (
    BASELINE_PREFIX,
    CHANCE_PREFIX,
    HIT_RATE,
    INTEREST_AUC,
    NDCG,
    POPULARITY_PREFIX,
    PRECISION,
    RECOMMEND_K,
    at,
)
from mtrec.data.cleaning import (
    KEPT,
    REJECTED,
    is_implicit_feedback,
    rejected_by_reason,
    table_counts,
)
from mtrec.data.labels import single_like_class
from mtrec.run_state import CACHED, FAILED, NodeRun, custom_property, output_uri
from mtrec.tfma_results import tfma_failure_lines, tfma_failures, tfma_metrics, tfma_values

SUMMARY_FILE = "summary.json"  # in the run's home, written by `mtrec run`


class RecommendedItem(TypedDict, total=False):
    """One row of a user's top items, as the summary and the report show them."""

    item_id: str
    score: float
    rating: float  # the served rating, under `mtrec query`'s name (RankedItem)
    title: str  # added from the catalogue
    genres: list[str]  # the report adds them


class ExampleRecommendation(TypedDict):
    user_id: str
    items: list[RecommendedItem]


class RunSummary(TypedDict, total=False):
    """SUMMARY_FILE's keys, one declaration for every module that writes or reads them
    (mypy checks every key written, and every key read by subscript; `.get` of a key not
    declared here is not flagged). collect() fills them from the run's artifacts;
    `mtrec run` adds `data` and `example`. A run that stopped early has fewer."""

    components: dict[str, str]  # node id -> state
    training: dict[str, Any]  # the Trainer's A.TRAINING_METRICS_FILE
    text_encoder: dict[str, Any]  # the TextEncoder's A.METADATA_FILE, shortened
    tfma_blessed: bool
    tfma: dict[str, float | None]  # shown name -> value (None: undefined)
    tfma_failed: list[str]  # each failed threshold, as a line
    retrieval: dict[str, Any]  # the RetrievalEvaluator's A.RETRIEVAL_METRICS_FILE
    retrieval_blessed: bool
    pushed_to: str | None
    already_served: bool  # pushed before: this run wrote no new version
    pushed_extension: str  # the add-items version pushed in the model's place
    data: dict[str, Any]  # the ingestion: counts, rejects_path, report, tables
    example: ExampleRecommendation  # the pushed model's top items for one eval user
    # What `mtrec add-items` served with the replaced model that the new one lacks.
    added_items_left_out: list[str]
    beam: str  # what ran the Beam stages (local_runner.describe_beam)


def collect(nodes: dict[str, NodeRun]) -> RunSummary:
    """Everything the summary shows, as plain data (also written as JSON)."""
    summary: RunSummary = {"components": {k: v.state for k, v in sorted(nodes.items())}}
    run_uri = output_uri(nodes.get(P.TRAINER), P.MODEL_RUN)
    if run_uri and os.path.exists(os.path.join(run_uri, A.TRAINING_METRICS_FILE)):
        with open(os.path.join(run_uri, A.TRAINING_METRICS_FILE)) as f:
            summary["training"] = json.load(f)
    meta = load_metadata(output_uri(nodes.get(P.TEXT_ENCODER), P.ITEM_TEXT_EMBEDDINGS))
    if meta is not None:
        mode = meta[A.ENCODER_MODE]
        summary["text_encoder"] = {
            "mode": mode,
            "name": meta.get(A.ENCODER_NAME, mode),
            "params": meta.get(A.ENCODER_PARAMS),
            "embedding_dim": meta.get(A.ENCODED_DIM),
            "num_items": meta.get(A.ENCODED_ITEMS),
            "encode_seconds": meta.get(A.ENCODER_SECONDS, {}).get(A.ENCODE_PHASE),
            "encode_cached": meta.get(A.ENCODE_CACHED, False),
            **{k: meta[A.MLM_REPORT].get(k)
               for k in (A.MLM_STEPS, A.MLM_SECONDS, A.MLM_LOSS_BEFORE, A.MLM_LOSS_AFTER)},
        }
    evaluator = nodes.get(P.EVALUATOR)
    evaluation = output_uri(evaluator, P.EVALUATION)
    if evaluator and evaluator.outputs.get(P.BLESSING) and evaluation:
        summary["tfma_blessed"] = bool(
            custom_property(evaluator.outputs[P.BLESSING][0], P.BLESSED)
        )
        summary["tfma"] = tfma_metrics(evaluation)
        summary["tfma_failed"] = tfma_failures(evaluation)
    retrieval = nodes.get(P.RETRIEVAL_EVALUATOR)
    if retrieval and retrieval.outputs.get(P.BLESSING):
        blessing = retrieval.outputs[P.BLESSING][0]
        with open(os.path.join(blessing.uri, A.RETRIEVAL_METRICS_FILE)) as f:
            summary["retrieval"] = json.load(f)
        summary["retrieval_blessed"] = bool(custom_property(blessing, P.BLESSED))
    pusher = nodes.get(P.PUSHER)
    pushed = pusher.outputs.get(P.PUSHED_MODEL) if pusher else None
    if pusher and pushed and custom_property(pushed[0], P.PUSHED):
        destination = custom_property(pushed[0], P.PUSHED_DESTINATION)
        # A cached Pusher, or one that found its model served, wrote nothing this run.
        summary["already_served"] = pusher.state == CACHED or bool(
            custom_property(pushed[0], P.ALREADY_SERVED))
        summary["pushed_to"] = None if destination is None else (
            newest_serving(str(destination)) if summary["already_served"] else str(destination))
        extension = custom_property(pushed[0], P.PUSHED_EXTENSION)
        if extension:
            summary["pushed_extension"] = str(extension)
    else:
        summary["pushed_to"] = None
    return summary


def example_recommendation(saved_model_dir: str, user_id: str, k: int = 5,
                           ) -> list[RecommendedItem]:
    """Top-k for one user through the exported `recommend` signature."""
    import tensorflow as tf  # here, not at the top: the report page imports this module

    return recommendation_rows(tf.saved_model.load(saved_model_dir), user_id, k)


def recommendation_rows(saved_model: Any, user_id: str, k: int) -> list[RecommendedItem]:
    """Top-k for one user from a loaded SavedModel's `recommend` signature, without
    the padding of a user with fewer than k unseen items (scores <= S.EXCLUDED_BELOW).

    `saved_model` is what tf.saved_model.load returns, whose class is private.
    """
    import tensorflow as tf  # as above

    recommend = saved_model.signatures[S.RECOMMEND]
    out = recommend(user_id=tf.constant([user_id]), k=tf.constant(k))
    return [
        {"item_id": i.decode(), "score": round(float(s), 4), "rating": round(float(r), 2)}
        for i, s, r in zip(
            out[S.ITEM_IDS].numpy()[0], out[S.SCORES].numpy()[0], out[S.RATINGS].numpy()[0],
            strict=True,
        )
        if s > S.EXCLUDED_BELOW
    ]


def training_time(training: Mapping[str, Any]) -> str:
    """"fit 335.0s + 12.6s scan, build, evaluation, export": the epochs' time (the epoch
    lines add up to it) and what the model_run did around them, so neither is taken for
    the other or for the Trainer component's wall time, which adds TFX's own work. A
    model_run from before the phases were recorded has its train_seconds only."""
    phases = dict(training.get(A.PHASE_SECONDS) or {})
    if A.FIT_PHASE not in phases:
        return f"{training[A.TRAIN_SECONDS]}s"
    fit = phases.pop(A.FIT_PHASE)
    return f"fit {fit:.1f}s + {sum(phases.values()):.1f}s {', '.join(phases)}"


def _protocol(training: dict) -> str:
    """", split protocol P (its settings)" as the Trainer recorded it; nothing for a
    model_run from before it did."""
    if P.SPLIT_PROTOCOL not in training:
        return ""
    if training[P.SPLIT_PROTOCOL] is None:
        return ", split protocol not recorded (cached examples: re-run with --no-cache)"
    settings = training.get(A.TRAINED_PROTOCOL_OVERRIDES) or {}
    listed = ", ".join(f"{k} {v}" for k, v in settings.items())
    return f", split protocol {training[P.SPLIT_PROTOCOL]}" + (f" ({listed})" if listed else "")


_FIRST_STAGE = {"exact": "exact first stage", "ivf": "IVF first stage"}
_ITEM_ITEM = {"dense": "dense item-item term", "top_k": "top-K item-item term",
              "cold_only": "no item-item term (unrated items' rule only)",
              "off": "no item-item term"}
_PRIOR = {"onboarding": "new users' prior: what users rated after the given items",
          "popularity": "new users' prior: popularity", "off": "no new-user prior"}


def served_regime_line(regime: Mapping[str, Any]) -> str:
    """What the export chose by its size rules (models/export.served_regime), in words:
    a catalogue past a limit changes what is served, and the run says so."""
    cached = regime.get(A.SERVED_CACHED_USERS, 0)
    return ", ".join([
        _FIRST_STAGE.get(str(regime.get(A.SERVED_FIRST_STAGE)), "?"),
        _ITEM_ITEM.get(str(regime.get(A.SERVED_ITEM_ITEM)), "?"),
        "ratings blended with item-kNN" if regime.get(A.SERVED_RATING_KNN)
        else "ratings from the rating head alone",
        _PRIOR.get(str(regime.get(A.SERVED_NEW_USER_PRIOR)), "?"),
        f"answers cached for {cached:,} users" if cached else "no answer cache",
    ])


def tfma_not_run(verdicts: Mapping[str, Any]) -> bool:
    """Whether TFMA did not run because the retrieval gate refused the model (it runs
    only on models that gate passed: pipeline.py's gate chain). `verdicts` is a
    summary, or the report's evaluation section: both carry the two blessings."""
    return verdicts.get("tfma_blessed") is None and verdicts.get("retrieval_blessed") is False


def _verdict(blessed: bool | None) -> str:
    """True/False, or "not run" ("None" was printed for a failed run's)."""
    return "not run" if blessed is None else str(blessed)


def _tfma_verdict(summary: RunSummary) -> str:
    """True/False, or why TFMA did not run."""
    if tfma_not_run(summary):
        return "not run (retrieval gate refused)"
    return _verdict(summary.get("tfma_blessed"))


def not_pushed_reason(summary: RunSummary, states: dict[str, str]) -> str | None:
    """Why nothing was pushed, from the blessings and component states."""
    if summary.get("pushed_to"):
        return None
    failed = [node for node, state in states.items() if state == FAILED]
    if failed:
        return f"component failed: {', '.join(failed)}"
    reasons = []
    if summary.get("tfma_blessed") is False:
        failures = summary.get("tfma_failed")
        detail = f" ({', '.join(failures)})" if failures else ""
        reasons.append("TFMA did not bless the model" + detail)
    elif tfma_not_run(summary):
        reasons.append("the retrieval gate refused the model (TFMA did not run)")
    retrieval = summary.get("retrieval") or {}
    metrics = retrieval.get(A.RETRIEVAL_METRICS) or {}
    for name, (value, bound) in (retrieval.get(A.RETRIEVAL_FAILED) or {}).items():
        reasons.append(f"retrieval {name} {gate_value(value)} < {bound}"
                       + failure_tag(metrics, name, value, bound))
    return "; ".join(reasons) or "the run stopped before the Pusher"


def shown_path(path: str) -> str:
    """A local path below the working directory as the relative path the run was given
    (the Pusher records it absolute); anything else (gs://, elsewhere) as it is."""
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    return path if relative.startswith("..") or "://" in path else relative


def ingest_report(data: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The ingest report (A.INGEST_REPORT_FILE) in a summary's "data"; {} without one."""
    return (data or {}).get("report") or {}


def implicit_feedback(data: Mapping[str, Any] | None) -> bool:
    """Whether the run's data (a summary's "data") had one rating value, so TFMA bounded
    only the example count (Thresholds.for_rating_values)."""
    return is_implicit_feedback(ingest_report(data).get(A.INGEST_RATING_VALUES))


def components_line(states: Mapping[str, str]) -> str:
    """How the run's components ended, in one short line: the commonest state as a
    count, every other state with its components' names (the ones worth reading)."""
    by_state: dict[str, list[str]] = {}
    for node, state in sorted(states.items()):
        by_state.setdefault(state, []).append(node)
    if not by_state:
        return "components: none ran"
    common = max(by_state, key=lambda state: len(by_state[state]))
    rest = [f"{state}: {', '.join(nodes)}" for state, nodes in by_state.items()
            if state != common]
    return f"components ({len(states)}): " + "; ".join(
        [f"{len(by_state[common])} {common}", *rest])


def render(summary: RunSummary) -> str:
    lines = ["", "=== mtrec run summary ==="]
    data = summary.get("data")
    report = ingest_report(data)
    if data:
        counts = data["counts"]
        reasons = rejected_by_reason(counts, nonzero=True)
        lines.append(
            f"data: {counts[KEPT]} ratings kept, {counts[REJECTED]} rejected"
            + (" (" + ", ".join(f"{r} {n}" for r, n in reasons.items()) + ")"
               if reasons else "")
            + f" -> {shown_path(data['rejects_path'])}"
        )
        rows = report.get(A.INGEST_ROWS) or {}
        if rows:
            rule = report.get(A.INGEST_SPLIT_RULE)
            order = [*P.SPLITS, P.CATALOG_SPLIT]  # one order, whichever split is larger
            lines.append("splits: " + ", ".join(f"{split} {n}" for split, n in sorted(
                rows.items(), key=lambda item: order.index(item[0]) if item[0] in order
                else len(order))) + (f" ({rule})" if rule else ""))
        tables = data.get("tables") or {}
        if tables:
            lines.append("tables: " + "; ".join(
                f"{name} {table_counts(name, c)}" for name, c in tables.items()))
        lines += [f"data note: {note}" for note in data.get("notes") or ()]
    lines.append(components_line(summary["components"]))
    if "beam" in summary:
        lines.append(f"beam: {summary['beam']}")
    if "training" in summary:
        t = summary["training"]
        lines.append(
            f"training: {t[A.TRAIN_EXAMPLES]} examples, {t[A.TRAINED_EPOCHS]} "
            f"epoch{'s' if t[A.TRAINED_EPOCHS] != 1 else ''}, {training_time(t)}, "
            f"catalogue {t[A.CATALOG_SIZE]} items" + _protocol(t)
        )
        if t.get(A.SERVED_REGIME):
            lines.append("serving: " + served_regime_line(t[A.SERVED_REGIME]))
    if "text_encoder" in summary:
        t = summary["text_encoder"]
        line = (
            f"text encoder: {t.get('name', t['mode'])} ({t['mode']}), {t['params']:,} params, "
            f"{t['embedding_dim']}-d"
        )
        if t.get("encode_seconds") is not None:
            cached = " (cached)" if t.get("encode_cached") else ""
            line += f", encoded {t.get('num_items')} items in {t['encode_seconds']:.1f}s{cached}"
        if t[A.MLM_STEPS]:
            line += (
                f", MLM {t[A.MLM_STEPS]} steps in {t[A.MLM_SECONDS]:.0f}s, "
                f"loss {t[A.MLM_LOSS_BEFORE]:.2f} -> {t[A.MLM_LOSS_AFTER]:.2f}"
            )
        lines.append(line)
    elif report.get(A.INGEST_ITEMS_WITH_TEXT) == 0:
        lines.append("text encoder: off: no item has a title, genres, a year or a "
                     "description")
    if implicit_feedback(data):
        lines.append("rating/relevance (TFMA, eval split): every rating is the same value "
                     "(implicit feedback), so there are no rating or like labels to measure; "
                     "the served-path gate decides")
    elif "tfma" in summary:
        lines.append("rating/relevance (TFMA, eval split): "
                     + tfma_values(summary["tfma"], single_like_class(report)))
    if "training" in summary:
        auc = summary["training"].get(A.EVAL_METRIC_PREFIX + INTEREST_AUC)
        if report.get(A.INGEST_ITEMS_WITH_GENRES) == 0:  # Keras' AUC without positives: 0
            lines.append("interest (eval split): no item has genres, so the interest task "
                         "was left out")
        elif report.get(A.INGEST_GENRES) == 1:  # nor without negatives
            lines.append("interest (eval split): the items have one genre, so the interest "
                         "task was left out")
        elif auc is not None:
            lines.append(f"interest (eval split): genre AUC {auc:.4f}")
    if "retrieval" in summary:
        m = summary["retrieval"][A.RETRIEVAL_METRICS]
        hr = ", ".join(
            f"HR@{k.split('@')[1]} {m[k]:.3f} (popularity {m[POPULARITY_PREFIX + k]:.3f})"
            for k in m if k.startswith(HIT_RATE + "@")
        )
        lines.append(f"retrieval (full catalogue): {hr}")
        ndcg, precision = at(NDCG, RECOMMEND_K), at(PRECISION, RECOMMEND_K)
        if ndcg in m:
            baseline = BASELINE_PREFIX + ndcg
            base = f", last pushed {m[baseline]:.3f}" if baseline in m else ""
            chance = CHANCE_PREFIX + ndcg  # runs before the chance gate have none
            base = (f", random order {m[chance]:.3f}" if chance in m else "") + base
            lines.append(
                f"served (recommend, seen items excluded): NDCG@{RECOMMEND_K} {m[ndcg]:.3f} "
                f"(popularity {m[POPULARITY_PREFIX + ndcg]:.3f}{base}), "
                f"P@{RECOMMEND_K} {m[precision]:.3f}"
            )
        lines += failure_lines(m, summary["retrieval"].get(A.RETRIEVAL_FAILED) or {},
                               summary["retrieval"].get(A.RETRIEVAL_THRESHOLDS))
    if summary.get("tfma_failed"):
        lines.append("TFMA gate failed: " + ", ".join(
            tfma_failure_lines(summary["tfma_failed"], report.get(A.INGEST_MEAN_RMSE))))
    lines.append(f"blessed: TFMA={_tfma_verdict(summary)} "
                 f"retrieval={_verdict(summary.get('retrieval_blessed'))}")
    pushed = summary["pushed_to"]
    reason = not_pushed_reason(summary, summary.get("components") or {})
    if pushed:
        again = (" (already served: no new version)" if summary.get("already_served") else
                 f" (add-items' version {summary['pushed_extension']} of this model: the items "
                 "added to it are served again)" if summary.get("pushed_extension") else "")
        lines.append(f"pushed to: {shown_path(pushed)}{again}")
        left_out = summary.get("added_items_left_out") or []
        if left_out:  # a retrain serves its own catalogue
            some = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
            lines.append(
                f"note: {len(left_out)} item(s) `mtrec add-items` served with the model before "
                f"are not in this one ({some}): add them to your items table, or run "
                "`mtrec add-items` again")
    else:
        lines.append(f"pushed to: nothing pushed ({reason})")
    rec = summary.get("example")
    if rec:
        items = "; ".join(
            f"{r['item_id']}{' ' + repr(r['title']) if r.get('title') else ''} "
            f"(score {r['score']}, rating {r['rating']})"
            for r in rec["items"]
        )
        lines.append(f"example: top {len(rec['items'])} for user {rec['user_id']}: {items}")
    return "\n".join(lines)
