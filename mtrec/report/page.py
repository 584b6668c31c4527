"""The run report as one self-contained HTML page (inline CSS, plots as data URIs).

`render` takes collect.py's plain data and returns the page; it reads no file,
so tests render hand-made data in milliseconds. A value nothing recorded is
shown as "not recorded", never left out silently.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mtrec.contracts.artifacts import (
    CATALOG_SIZE,
    ENCODE_PHASE,
    INGEST_ITEMS,
    INGEST_ITEMS_WITH_TEXT,
    INGEST_ROWS,
    INGEST_USERS,
    MLM_LOSS_BEFORE,
    MLM_SECONDS,
    MLM_STEPS,
    RETRIEVAL_FAILED,
    RETRIEVAL_METRICS,
    RETRIEVAL_THRESHOLDS,
    TRAIN_EXAMPLES,
    TRAIN_SECONDS,
    TRAINED_EPOCHS,
    TRAINED_OPTIMIZER,
)
from mtrec.contracts.metrics import (
    BEYOND_ACCURACY_METRICS,
    EVAL_USERS,
    HIT_RATE,
    RANKING_METRICS,
    RETRIEVAL_KS,
    STDERR_SUFFIX,
    at,
)
from mtrec.contracts.pipeline import CATALOG_SPLIT
from mtrec.data.cleaning import DERIVED, DUPLICATE, KEPT, REJECTED, ROWS_READ
from mtrec.data.tables import USERS
from mtrec.report import charts
from mtrec.report.schema import (
    DataSection,
    EvaluationSection,
    ExampleUser,
    PipelineSection,
    Report,
    TextEncoderSection,
    TrainingSection,
)
from mtrec.run_state import FAILED, RUNNING
from mtrec.summary import ingest_report, tfma_not_run, training_time

SECTIONS = ("data", "pipeline", "training", "evaluation", "text-encoder", "examples")
NOT_RECORDED = "not recorded"
NOT_TASK_LOSSES = ("regularization_loss", "total_loss")  # in the logs next to the tasks'
CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem;color:#222}
h1{font-size:1.5rem}h2{border-bottom:1px solid #ccc;padding-top:1rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;
text-align:left;font-size:.9rem}img{max-width:100%;display:block;margin:.5rem 0}
.ok{color:#2a7a2a;font-weight:bold}.bad{color:#b22;font-weight:bold}.muted{color:#777}.warn{color:#a65e00}
nav a{margin-right:1rem}"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    """A float to `digits` places, an integer with thousands separators (32,020)."""
    if value is None:
        return f'<span class="muted">{NOT_RECORDED}</span>'
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _e(value)


def _stderr(value: Any) -> str:
    """A relative gate's standard error; a dash for a bound without one (HR@K), or for
    fewer than two eval users."""
    if isinstance(value, float) and math.isfinite(value):
        return _num(value)
    return '<span class="muted">–</span>'


def _count(value: Any) -> str:
    """A count: an integer with thousands separators (22,713,216), a whole float (TFMA's
    example_count, 7980.0) as an integer, else as _num."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _num(value)


def _of(part: Any, whole: Any, where: str) -> str:
    """`part` with the total it is a part of ("797 of 800 in the catalogue"), so a count of
    rated items is not read as the catalogue's size; just `part` where no total was recorded."""
    if part is None or whole is None:
        return _count(part)
    return f"{_count(part)} of {_count(whole)} {_e(where)}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def _missing(what: str) -> str:
    return f'<p class="muted">{_e(what)}: {NOT_RECORDED}.</p>'


def _verdict(ok: bool | None, text: str) -> str:
    css = "ok" if ok else "bad"
    return f'<p class="{css}">{_e(text)}</p>'


def data_section(data: DataSection) -> str:
    out = []
    counts = data.get("counts")
    if counts:
        out.append(_img(charts.rows_by_reason(counts), "rows kept and rejected by reason"))
        out.append(f"<p>rejected rows: <code>{_e(data.get('rejects_path'))}</code></p>")
    else:
        out.append(_missing("ingestion counts (summary.json)"))
    report = ingest_report(data)
    tables = data.get("tables") or {}
    # write_examples counts the distinct users and items of the kept ratings, which can be
    # fewer than the users and items tables hold (800 items, 797 rated): name the population.
    out.append(_table(["users with ratings", "items with ratings", "ratings kept"], [[
        _of(report.get(INGEST_USERS), (tables.get(USERS) or {}).get(KEPT), "in the users table"),
        _of(report.get(INGEST_ITEMS), (report.get(INGEST_ROWS) or {}).get(CATALOG_SPLIT),
            "in the catalogue"),
        _count(counts.get(KEPT) if counts else None)]]))
    rows = report.get(INGEST_ROWS)
    out.append(_table(["split", "rows"], [[_e(k), _num(v)] for k, v in rows.items()])
               if rows else _missing("split sizes"))
    if tables:
        out.append(_table(["table", "read", "kept", "rejected", "duplicate"], [
            [_e(n), "no file: one row per rated id" if c.get(DERIVED) else _num(c.get(ROWS_READ)),
             _num(c.get(KEPT)), _num(c.get(REJECTED)), _num(c.get(DUPLICATE))]
            for n, c in tables.items()]))
    out += [f"<p>note: {_e(note)}</p>" for note in data.get("notes") or ()]
    histograms = {k: v for k, v in (data.get("rating_histogram") or {}).items() if v}
    out.append(_img(charts.rating_histogram(histograms), "rating histogram")
               if histograms else _missing("rating histogram"))
    found = data.get("anomalies")
    if found is None:
        out.append(_missing("schema anomalies (ExampleValidator)"))
    else:
        lines = [f"{split}: {a}" for split, items in found.items() for a in items]
        out.append("<p>schema anomalies: " + (_e("; ".join(lines)) if lines else "none") + "</p>")
    return "".join(out)


def pipeline_section(pipeline: PipelineSection) -> str:
    components = pipeline.get("components") or []
    out = [_img(charts.timeline(components), "pipeline timeline")] if components else [
        _missing("component executions (ML Metadata)")]
    # A RUNNING execution of the latest run was killed (or still runs): no end recorded.
    out.append(_table(["component", "status", "cached", "wall time (s)"], [
        [_e(c["id"]), _e(c["state"]), "yes" if c["cached"] else "no",
         "not finished" if c["state"] == RUNNING else f"{c['seconds']:.1f}"]
        for c in components]))
    if pipeline.get("log") and any(c["state"] == FAILED for c in components):
        out.append(f"<p>the error and its traceback: <code>{_e(pipeline['log'])}</code> "
                   "(in the run's home)</p>")
    if pipeline.get("pushed_to"):
        again = " (already served: no new version)" if pipeline.get("already_served") else ""
        out.append(_verdict(True, f"pushed: {pipeline['pushed_to']}{again}"))
    else:
        out.append(_verdict(False, f"nothing pushed: {pipeline.get('not_pushed')}"))
    return "".join(out)


def worse_at_the_end(val: Mapping[str, Sequence[float]], slack: float = 0.02) -> list[str]:
    """A note per validation metric or loss whose last epoch is worse than its best by more
    than `slack` (relative): the pushed model is the last epoch's, so a user should know
    (ml-latest-small: rating RMSE 0.857 at epoch 2, 0.953 at epoch 8)."""
    notes = []
    for name, values in val.items():
        if len(values) < 2 or not any(values) or name in NOT_TASK_LOSSES:
            continue  # the regularization loss grows with the weights: no sign of overfitting
        higher = "auc" in name
        best = max(values) if higher else min(values)
        last = values[-1]
        if abs(best) > 0 and (best - last if higher else last - best) > slack * abs(best):
            epoch = values.index(best) + 1
            notes.append(f"validation {name} was best at epoch {epoch} ({best:.4f}) and ends "
                         f"at {last:.4f} (epoch {len(values)})")
    return notes


# Said under the curves when a validation curve ends worse than its best. They are the
# heads' own numbers, not the served lists, and the two part ways (quality_tuning.md,
# session 29: ml-latest-small's validation cut, rating RMSE worst at 8 epochs while
# served NDCG@10 rose 0.123 / 0.142 / 0.154 at 2 / 4 / 8), so the note sends the user
# to the served comparison instead of advising fewer epochs.
EPOCHS_NOTE = (
    "The pushed model is the last epoch's. These are the heads' own losses and metrics "
    "on the eval split, not the served lists, and the two can part ways: on ml-latest-small "
    "these curves worsen after epoch 1-4 while served NDCG@10 still rises up to 8 epochs. "
    "To try fewer, run again with --epochs N: the Evaluation section then compares the "
    "new model's served NDCG@10 and TFMA metrics with the last pushed model's, and one "
    "worse by more than the change thresholds is not pushed."
)


def training_section(training: TrainingSection) -> str:
    out = []
    metrics = training.get("metrics")
    if metrics:
        out.append(_table(["examples", "epochs", "optimizer", "time", "catalogue"], [[
            _num(metrics.get(TRAIN_EXAMPLES)), _num(metrics.get(TRAINED_EPOCHS)),
            _num(metrics.get(TRAINED_OPTIMIZER)),
            training_time(metrics) if TRAIN_SECONDS in metrics else "–",
            _num(metrics.get(CATALOG_SIZE))]]))
    curves = training.get("curves") or {}
    train, val = curves.get("train") or {}, curves.get("validation") or {}
    losses = {f"{phase} {name}": values
              for phase, series in (("train", train), ("validation", val))
              for name, values in series.items() if name == "loss"}
    out.append(_img(charts.curves("loss per epoch (weighted sum of task losses)", losses,
                                  "loss"), "loss curves") if losses else _missing("loss curves"))
    per_task = {name: values for name, values in val.items()
                if not name.endswith("loss") and any(values)}
    out.append(_img(charts.curves("validation metric per task, per epoch", per_task,
                                  "AUC: higher is better\nRMSE, MAE: lower is better"),
                    "per-task validation curves") if per_task
               else _missing("per-task validation metrics"))
    worse = worse_at_the_end(val)
    if worse:
        out.append('<p class="warn">' + _e("; ".join(worse) + ". " + EPOCHS_NOTE) + "</p>")
    # The model tracks each task's unweighted loss (`<task>_loss`, train and validation),
    # and the regularization and total losses, which are no task's (left out).
    task_losses = {f"{phase} {name.removesuffix('_loss')}": values
                   for phase, series in (("train", train), ("validation", val))
                   for name, values in series.items()
                   if name.endswith("_loss") and name not in NOT_TASK_LOSSES and any(values)}
    out.append(_img(charts.curves("loss per task, per epoch (unweighted)", task_losses, "loss",
                                              log=True),
                    "per-task loss curves") if task_losses
               else _missing("per-task losses (models trained before they were tracked)"))
    config = training.get("config")
    if config:
        tasks = config.get("tasks") or list(config["loss_weights"])  # a task left out: no bar
        weights = {t: w for t, w in config["loss_weights"].items() if t in tasks}
        out.append(_img(charts.loss_weights(weights), "loss weights"))
        if config.get("uncertainty_weighting"):
            out.append(_missing("learned uncertainty weights"))
        else:
            out.append("<p>uncertainty weighting: off (fixed weights above)</p>")
    else:
        out.append(_missing("loss weights (the Trainer's saved config)"))
    return "".join(out)


def _bound(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("lower_bound") is not None:
        parts.append(f"&ge; {row['lower_bound']}")
    if row.get("upper_bound") is not None:
        parts.append(f"&le; {row['upper_bound']}")
    if row.get("max_change") is not None:
        parts.append(f"change vs baseline {row['max_change']:+} ({_e(row.get('direction'))})")
    return ", ".join(parts) or "&mdash;"


def evaluation_section(evaluation: EvaluationSection) -> str:
    out = ["<h3>TFMA (eval split)</h3>"]
    tfma = evaluation.get("tfma") or []
    if tfma_not_run(evaluation):
        out.append('<p class="muted">TFMA did not run: it evaluates only models that passed '
                   "the retrieval gate (below), so that its blessing, the baseline of later "
                   "runs, is only ever a pushed model's.</p>")
        return "".join(out + _retrieval_section(evaluation))
    out.append(_table(["output", "metric", "value", "threshold", "baseline", "change"], [
        [_e(r["output"]), _e(r["metric"]), fmt(r.get("value")), _bound(r),
         fmt(r.get("baseline")), fmt(r.get("diff"))]
        for r in tfma for fmt in [_count if r["metric"].endswith("count") else _num]])
               if tfma else _missing("TFMA metrics"))
    if evaluation.get("implicit_feedback"):
        out.append('<p class="muted">Every rating is the same value (implicit feedback): the '
                   "rating and like metrics have no labels (RMSE 0, AUC 0), so TFMA bounds only "
                   "the example count and the retrieval gate below decides.</p>")
    if tfma and not any("baseline" in r for r in tfma):
        out.append('<p class="muted">No baseline model yet (no earlier run was blessed): '
                   "change thresholds were skipped.</p>")
    verdict = evaluation.get("tfma_verdict")
    out.append(_verdict(evaluation.get("tfma_blessed"), verdict) if verdict
               else _missing("TFMA verdict"))
    return "".join(out + _retrieval_section(evaluation))


def _retrieval_section(evaluation: EvaluationSection) -> list[str]:
    out = ["<h3>Served retrieval and ranking (RetrievalEvaluator)</h3>"]
    retrieval = evaluation.get("retrieval") or {}
    metrics = retrieval.get(RETRIEVAL_METRICS) or {}
    if metrics:
        hit_rates = [at(HIT_RATE, k) for k in RETRIEVAL_KS if at(HIT_RATE, k) in metrics]
        ranking = [k for k in RANKING_METRICS if k in metrics]
        out.append(_img(charts.model_vs_popularity(
            "retrieval: hit rate of the held-out items, full catalogue, vs popularity",
            metrics, hit_rates), "HR@K vs popularity"))
        out.append(_img(charts.model_vs_popularity(
            "served top-10 (seen items excluded) vs popularity", metrics, ranking),
            "ranking vs popularity"))
        failed = retrieval.get(RETRIEVAL_FAILED) or {}
        users = metrics.get(EVAL_USERS)
        out.append(_table(["bound", "threshold", "value", "standard error"
                           + (f" ({users:,} eval users)" if users else ""), "passed"], [
            [_e(name), _num(bound),
             _num(metrics[name]) if name in metrics else "skipped (no baseline model yet)",
             _stderr(metrics.get(name + STDERR_SUFFIX)), "no" if name in failed else "yes"]
            for name, bound in (retrieval.get(RETRIEVAL_THRESHOLDS) or {}).items()]))
        for name in BEYOND_ACCURACY_METRICS:
            out.append(f"<p>{name}: {_num(metrics.get(name))}</p>")
        blessed = evaluation.get("retrieval_blessed")
        out.append(_verdict(blessed, "retrieval gate passed" if blessed else
                            "retrieval gate failed: " + ", ".join(failed)))
    else:
        out.append(_missing("retrieval metrics"))
    return out


def text_encoder_section(encoder: TextEncoderSection | None,
                         items_with_text: int | None = None) -> str:
    if not encoder:
        if items_with_text == 0:  # the ingest report's count: `mtrec run` left it out
            return ("<p>No text encoder in this run: no item has a title, genres, a year "
                    "or a description.</p>")
        return "<p>No text encoder in this run (or nothing recorded).</p>"
    mlm, seconds = encoder.get("mlm") or {}, encoder.get("seconds") or {}
    config = encoder.get("config")
    cached = " (cached)" if encoder.get("encode_cached") else ""
    encode = _num(seconds.get(ENCODE_PHASE), 2) + cached
    out = [_table(["encoder", "mode", "parameters", "embedding dim", "items encoded",
                   "encoding seconds"], [[
        _e(encoder.get("name") or encoder.get("mode") or ""), _num(encoder.get("mode")),
        _count(encoder.get("params")), _num(encoder.get("embedding_dim")),
        _count(encoder.get("num_items")), encode]])]
    if isinstance(config, Mapping):
        out.append(_table(["setting", "value"], [[_e(k), "default" if v is None else _num(v)]
                                                 for k, v in config.items()]))
    if mlm.get(MLM_LOSS_BEFORE) is not None:
        out.append(_table(["MLM steps", "MLM seconds"],
                          [[_count(mlm.get(MLM_STEPS)), _num(mlm.get(MLM_SECONDS), 1)]]))
        out.append(_img(charts.mlm_loss(mlm), "masked-LM loss"))
        out.append('<p class="muted">The per-step MLM curve is not recorded; start and end '
                   "losses are.</p>")
    elif mlm.get(MLM_STEPS):
        out.append(_missing("MLM loss"))
    else:
        out.append('<p class="muted">Frozen: the encoder runs with its published weights; '
                   "this mode trains no masked-LM steps.</p>")
    return "".join(out)


def examples_section(examples: Sequence[ExampleUser]) -> str:
    if not examples:
        return _missing("example recommendations (no pushed model)")
    out = []
    for user in examples:
        out.append(f"<h3>user {_e(user['user_id'])}</h3>")
        out.append(_table(["#", "title", "item", "predicted rating", "score"], [
            [str(i), _e(r.get("title") or ""), _e(r["item_id"]), _num(r["predicted_rating"], 2),
             _num(r["score"], 3)] for i, r in enumerate(user["items"], 1)]))
        interest = user.get("interest")
        if interest:
            out.append(_img(charts.genre_interest(user["user_id"], interest),
                            f"genre interest of user {user['user_id']}"))
        else:  # {}: the model knows no genres; None: a run before interests were recorded
            out.append('<p class="muted">genre interest: none (no item has genres)</p>'
                       if interest is not None else _missing("genre interest"))
    return "".join(out)


def render(report: Report) -> str:
    """The whole page for collect.collect()'s data."""
    sections = {  # SECTIONS' id -> (heading, body)
        "data": ("Data", data_section(report.get("data") or {})),
        "pipeline": ("Pipeline", pipeline_section(report.get("pipeline") or {})),
        "training": ("Training", training_section(report.get("training") or {})),
        "evaluation": ("Evaluation", evaluation_section(report.get("evaluation") or {})),
        "text-encoder": ("Text encoder", text_encoder_section(
            report.get("text_encoder"),
            ingest_report(report.get("data")).get(INGEST_ITEMS_WITH_TEXT))),
        "examples": ("Examples", examples_section(report.get("examples") or [])),
    }
    nav = "".join(f'<a href="#{s}">{sections[s][0]}</a>' for s in SECTIONS)
    body = "".join(f'<section id="{s}"><h2>{sections[s][0]}</h2>{sections[s][1]}</section>'
                   for s in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>mtrec run report</title><style>{CSS}</style></head><body>"
            f"<h1>mtrec run report</h1><p class=\"muted\">{_e(report.get('home'))} &middot; "
            f"built {_e(report.get('generated'))}</p><nav>{nav}</nav>{body}</body></html>")
