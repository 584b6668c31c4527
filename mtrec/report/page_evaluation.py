"""The report's Evaluation section: TFMA's table and verdict, the RetrievalEvaluator's
served metrics next to popularity's, and its gate.

TFMA measures `serving_default`, the served outputs (the blended, clipped rating; the
calibrated P(like)), which differ from the heads' own metrics of the Training section:
the headings say so. Each headline number is written out, not left to a bar's height.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mtrec.components.retrieval_evaluator.gate_notes import failure_lines
from mtrec.contracts import features as F
from mtrec.contracts.artifacts import (
    RETRIEVAL_FAILED,
    RETRIEVAL_METRICS,
    RETRIEVAL_THRESHOLDS,
)
from mtrec.contracts.metrics import (
    BEYOND_ACCURACY_METRICS,
    CHANCE_PREFIX,
    EVAL_USERS,
    HIT_RATE,
    POPULARITY_PREFIX,
    RANKING_METRICS,
    RETRIEVAL_KS,
    STDERR_SUFFIX,
    TFMA_AUC,
    TFMA_KEYS,
    at,
)
from mtrec.contracts.pipeline import EVALUATOR, RETRIEVAL_EVALUATOR
from mtrec.data.labels import like_rule
from mtrec.report import charts
from mtrec.report.markup import (
    count,
    escape,
    img,
    missing,
    muted,
    num,
    stderr,
    stopped_note,
    table,
    verdict,
)
from mtrec.report.schema import EvaluationSection
from mtrec.summary import tfma_not_run


def tfma_note(like: str) -> str:
    """What TFMA measured; `like` is the like label the run used, in words
    (data.labels.like_rule)."""
    return (
        "What serving_default answers, as clients get it: the served rating (the rating "
        "head blended with a neighbour predictor and clipped to the rating range) and the "
        f"calibrated P(like), its AUC over rated pairs only (liked: {like}). The Training "
        "section's validation metrics are the heads' own (the raw rating head; the "
        "relevance AUC there also counts sampled pairs), so the two differ."
    )


UNDEFINED = "undefined"  # a TFMA value with no meaning: NaN, or an AUC over one class
NO_BASELINE = "no baseline"  # a baseline or change cell when no earlier model was blessed
SKIPPED = "skipped (no baseline model yet)"  # a change gate on the first blessed run
AUC_KEY = TFMA_KEYS[TFMA_AUC]


def direction(value: Any) -> str:
    """TFMA's change direction in words: LOWER_IS_BETTER -> "lower is better"."""
    return escape(str(value).lower().replace("_", " "))


def _bound(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("lower_bound") is not None:
        parts.append(f"&ge; {row['lower_bound']}")
    if row.get("upper_bound") is not None:
        parts.append(f"&le; {row['upper_bound']}")
    if row.get("max_change") is not None:
        parts.append(f"change vs baseline {row['max_change']:+} "
                     f"({direction(row.get('direction'))})")
    return ", ".join(parts) or "&mdash;"


def _value(value: Any) -> str:
    """A TFMA value; NaN or inf (calibration where nothing is liked) as undefined."""
    if isinstance(value, float) and not math.isfinite(value):
        return muted(UNDEFINED)
    return num(value)


def tfma_table(tfma: list[dict[str, Any]], one_like_class: str | None = None) -> str:
    """Candidate, threshold, baseline and change per metric; without any baseline (no
    model blessed before) the last two say so rather than "not recorded". An eval split
    of one like class (`one_like_class`) shows the relevance AUC as undefined, not 0."""
    baseline = any("baseline" in r for r in tfma)
    rows = []
    for r in tfma:
        fmt = count if r["metric"].endswith("count") else _value
        cells = [fmt(r.get("value"))] + ([fmt(r.get("baseline")), fmt(r.get("diff"))]
                                         if baseline else [muted(NO_BASELINE)] * 2)
        if one_like_class and (r["output"], r["metric"]) == (F.OUT_RELEVANCE, AUC_KEY):
            # TFMA's 0, the baseline's and their difference: no ranking to measure
            cells = [muted(UNDEFINED)] * (3 if baseline else 1) + cells[3 if baseline else 1:]
        rows.append([escape(r["output"]), escape(r["metric"]), cells[0], _bound(r), *cells[1:]])
    return table(["output", "metric", "value", "threshold", "baseline", "change"], rows)


def evaluation_section(evaluation: EvaluationSection,
                       stopped: Mapping[str, str] | None = None) -> str:
    stopped = stopped or {}
    out = ["<h3>TFMA (eval split): the served outputs</h3>"]
    tfma = evaluation.get("tfma") or []
    if tfma_not_run(evaluation):
        out.append('<p class="muted">TFMA did not run: it evaluates only models that passed '
                   "the retrieval gate (below), so that its blessing, the baseline of later "
                   "runs, is only ever a pushed model's.</p>")
        return "".join(out + _retrieval_section(evaluation, stopped))
    if not tfma and EVALUATOR in stopped:
        out.append(stopped_note("TFMA metrics", EVALUATOR, stopped))
        return "".join(out + _retrieval_section(evaluation, stopped))
    one_class = evaluation.get("one_like_class")
    out.append(tfma_table(tfma, one_class) if tfma else missing("TFMA metrics"))
    if tfma:
        out.append('<p class="muted">'
                   + escape(tfma_note(evaluation.get("like_rule") or like_rule({}))) + "</p>")
    if one_class and not evaluation.get("implicit_feedback"):
        out.append(f'<p class="muted">The eval split has {escape(one_class)}: the relevance '
                   "AUC is undefined (TFMA reports 0), so its bounds were dropped, the rating "
                   "bounds kept, and the retrieval gate below decides the ranking.</p>")
    if evaluation.get("implicit_feedback"):
        out.append('<p class="muted">Every rating is the same value (implicit feedback): the '
                   "rating and like metrics have no labels (RMSE 0, AUC 0), so TFMA bounds only "
                   "the example count and the retrieval gate below decides.</p>")
    if tfma and not any("baseline" in r for r in tfma):
        out.append('<p class="muted">No baseline model yet (no earlier run was blessed): '
                   "change thresholds were skipped.</p>")
    said = evaluation.get("tfma_verdict")
    out.append(verdict(evaluation.get("tfma_blessed"), said) if said
               else missing("TFMA verdict"))
    return "".join(out + _retrieval_section(evaluation, stopped))


def headline_table(metrics: Mapping[str, Any]) -> str:
    """The served metrics next to popularity's on the same users, written out (the bars
    above show them; their heights alone read as no number), and next to a random
    order's where the evaluator computed it (NDCG@10: the chance gate's reference)."""
    names = [*(at(HIT_RATE, k) for k in RETRIEVAL_KS), *RANKING_METRICS,
             *BEYOND_ACCURACY_METRICS]
    baselines = [POPULARITY_PREFIX] + (
        [CHANCE_PREFIX] if any(CHANCE_PREFIX + n in metrics for n in names) else [])
    rows = [[escape(n), num(metrics[n]),
             *(num(metrics[prefix + n]) if prefix + n in metrics else muted("&mdash;")
               for prefix in baselines)]
            for n in names if n in metrics]
    return table(["metric", "model", "popularity", "random order"][:2 + len(baselines)], rows)


def _gate_row(name: str, bound: Any, metrics: Mapping[str, Any],
              failed: Mapping[str, Any]) -> list[str]:
    if name not in metrics:  # the change gate without a baseline model
        return [escape(name), num(bound), muted("&mdash;"), stderr(None), SKIPPED]
    return [escape(name), num(bound), num(metrics[name]),
            stderr(metrics.get(name + STDERR_SUFFIX)), "no" if name in failed else "yes"]


def _retrieval_section(evaluation: EvaluationSection, stopped: Mapping[str, str]
                       ) -> list[str]:
    out = ["<h3>Served retrieval and ranking (RetrievalEvaluator)</h3>"]
    retrieval = evaluation.get("retrieval") or {}
    metrics = retrieval.get(RETRIEVAL_METRICS) or {}
    if not metrics:
        out.append(stopped_note("retrieval metrics", RETRIEVAL_EVALUATOR, stopped)
                   if RETRIEVAL_EVALUATOR in stopped else missing("retrieval metrics"))
        return out
    hit_rates = [at(HIT_RATE, k) for k in RETRIEVAL_KS if at(HIT_RATE, k) in metrics]
    ranking = [k for k in RANKING_METRICS if k in metrics]
    out.append(img(charts.model_vs_popularity(
        "retrieval: hit rate of the held-out items, full catalogue, vs popularity",
        metrics, hit_rates), "HR@K vs popularity"))
    out.append(img(charts.model_vs_popularity(
        "served top-10 (seen items excluded) vs popularity", metrics, ranking),
        "ranking vs popularity"))
    out.append(headline_table(metrics))
    failed = retrieval.get(RETRIEVAL_FAILED) or {}
    users = metrics.get(EVAL_USERS)
    out.append(table(["bound", "threshold", "value", "standard error"
                       + (f" ({users:,} eval users)" if users else ""), "passed"], [
        _gate_row(name, bound, metrics, failed)
        for name, bound in (retrieval.get(RETRIEVAL_THRESHOLDS) or {}).items()]))
    blessed = evaluation.get("retrieval_blessed")
    out.append(verdict(blessed, "retrieval gate passed" if blessed else
                        "retrieval gate failed: " + ", ".join(failed)))
    # Where the eval split cannot tell models apart, or the shortfall is noise: why, and
    # the flag that pushes anyway (the summary's lines after "retrieval gate failed").
    notes = failure_lines(metrics, failed, retrieval.get(RETRIEVAL_THRESHOLDS))[1:]
    out += [f'<p class="warn">{escape(note)}</p>' for note in notes]
    return out
