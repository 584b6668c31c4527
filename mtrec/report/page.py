"""The run report as one self-contained HTML page (inline CSS, plots as data URIs).

`render` takes collect.py's plain data and returns the page; it reads no file,
so tests render hand-made data in milliseconds. A value nothing recorded is
shown as "not recorded", never left out silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtrec.contracts.artifacts import (
    CATALOG_SIZE,
    ENCODE_PHASE,
    INGEST_ITEMS,
    INGEST_ITEMS_WITH_TEXT,
    INGEST_ROWS,
    INGEST_USERS,
    LIKE_CALIBRATION,
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
from mtrec.report.markup import (
    CSS,
    count,
    escape,
    img,
    missing,
    num,
    of,
    platt,
    stderr,
    table,
    verdict,
)
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
NOT_TASK_LOSSES = ("regularization_loss", "total_loss")  # in the logs next to the tasks'
def data_section(data: DataSection) -> str:
    out = []
    counts = data.get("counts")
    if counts:
        out.append(img(charts.rows_by_reason(counts), "rows kept and rejected by reason"))
        out.append(f"<p>rejected rows: <code>{escape(data.get('rejects_path'))}</code></p>")
    else:
        out.append(missing("ingestion counts (summary.json)"))
    report = ingest_report(data)
    tables = data.get("tables") or {}
    # write_examples counts the distinct users and items of the kept ratings, which can be
    # fewer than the users and items tables hold (800 items, 797 rated): name the population.
    out.append(table(["users with ratings", "items with ratings", "ratings kept"], [[
        of(report.get(INGEST_USERS), (tables.get(USERS) or {}).get(KEPT), "in the users table"),
        of(report.get(INGEST_ITEMS), (report.get(INGEST_ROWS) or {}).get(CATALOG_SPLIT),
            "in the catalogue"),
        count(counts.get(KEPT) if counts else None)]]))
    rows = report.get(INGEST_ROWS)
    out.append(table(["split", "rows"], [[escape(k), num(v)] for k, v in rows.items()])
               if rows else missing("split sizes"))
    if tables:
        out.append(table(["table", "read", "kept", "rejected", "duplicate"], [
            [escape(n),
             "no file: one row per rated id" if c.get(DERIVED) else num(c.get(ROWS_READ)),
             num(c.get(KEPT)), num(c.get(REJECTED)), num(c.get(DUPLICATE))]
            for n, c in tables.items()]))
    out += [f"<p>note: {escape(note)}</p>" for note in data.get("notes") or ()]
    histograms = {k: v for k, v in (data.get("rating_histogram") or {}).items() if v}
    out.append(img(charts.rating_histogram(histograms), "rating histogram")
               if histograms else missing("rating histogram"))
    found = data.get("anomalies")
    if found is None:
        out.append(missing("schema anomalies (ExampleValidator)"))
    else:
        lines = [f"{split}: {a}" for split, items in found.items() for a in items]
        listed = escape("; ".join(lines)) if lines else "none"
        out.append(f"<p>schema anomalies: {listed}</p>")
    return "".join(out)


def pipeline_section(pipeline: PipelineSection) -> str:
    components = pipeline.get("components") or []
    out = [img(charts.timeline(components), "pipeline timeline")] if components else [
        missing("component executions (ML Metadata)")]
    # A RUNNING execution of the latest run was killed (or still runs): no end recorded.
    out.append(table(["component", "status", "cached", "wall time (s)"], [
        [escape(c["id"]), escape(c["state"]), "yes" if c["cached"] else "no",
         "not finished" if c["state"] == RUNNING else f"{c['seconds']:.1f}"]
        for c in components]))
    if pipeline.get("log") and any(c["state"] == FAILED for c in components):
        out.append(f"<p>the error and its traceback: <code>{escape(pipeline['log'])}</code> "
                   "(in the run's home)</p>")
    if pipeline.get("pushed_to"):
        again = " (already served: no new version)" if pipeline.get("already_served") else ""
        out.append(verdict(True, f"pushed: {pipeline['pushed_to']}{again}"))
    else:
        out.append(verdict(False, f"nothing pushed: {pipeline.get('not_pushed')}"))
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
        out.append(table(["examples", "epochs", "optimizer", "time", "catalogue",
                          "P(like) calibration"], [[
            num(metrics.get(TRAIN_EXAMPLES)), num(metrics.get(TRAINED_EPOCHS)),
            num(metrics.get(TRAINED_OPTIMIZER)),
            training_time(metrics) if TRAIN_SECONDS in metrics else "–",
            num(metrics.get(CATALOG_SIZE)), platt(metrics.get(LIKE_CALIBRATION))]]))
    curves = training.get("curves") or {}
    train, val = curves.get("train") or {}, curves.get("validation") or {}
    losses = {f"{phase} {name}": values
              for phase, series in (("train", train), ("validation", val))
              for name, values in series.items() if name == "loss"}
    out.append(img(charts.curves("loss per epoch (weighted sum of task losses)", losses,
                                  "loss"), "loss curves") if losses else missing("loss curves"))
    per_task = {name: values for name, values in val.items()
                if not name.endswith("loss") and any(values)}
    out.append(img(charts.curves("validation metric per task, per epoch", per_task,
                                  "AUC: higher is better\nRMSE, MAE: lower is better"),
                    "per-task validation curves") if per_task
               else missing("per-task validation metrics"))
    worse = worse_at_the_end(val)
    if worse:
        out.append('<p class="warn">' + escape("; ".join(worse) + ". " + EPOCHS_NOTE) + "</p>")
    # The model tracks each task's unweighted loss (`<task>_loss`, train and validation),
    # and the regularization and total losses, which are no task's (left out).
    task_losses = {f"{phase} {name.removesuffix('_loss')}": values
                   for phase, series in (("train", train), ("validation", val))
                   for name, values in series.items()
                   if name.endswith("_loss") and name not in NOT_TASK_LOSSES and any(values)}
    out.append(img(charts.curves("loss per task, per epoch (unweighted)", task_losses, "loss",
                                              log=True),
                    "per-task loss curves") if task_losses
               else missing("per-task losses (models trained before they were tracked)"))
    config = training.get("config")
    if config:
        tasks = config.get("tasks") or list(config["loss_weights"])  # a task left out: no bar
        weights = {t: w for t, w in config["loss_weights"].items() if t in tasks}
        out.append(img(charts.loss_weights(weights), "loss weights"))
        if config.get("uncertainty_weighting"):
            out.append(missing("learned uncertainty weights"))
        else:
            out.append("<p>uncertainty weighting: off (fixed weights above)</p>")
    else:
        out.append(missing("loss weights (the Trainer's saved config)"))
    return "".join(out)


def _bound(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("lower_bound") is not None:
        parts.append(f"&ge; {row['lower_bound']}")
    if row.get("upper_bound") is not None:
        parts.append(f"&le; {row['upper_bound']}")
    if row.get("max_change") is not None:
        parts.append(f"change vs baseline {row['max_change']:+} ({escape(row.get('direction'))})")
    return ", ".join(parts) or "&mdash;"


def evaluation_section(evaluation: EvaluationSection) -> str:
    out = ["<h3>TFMA (eval split)</h3>"]
    tfma = evaluation.get("tfma") or []
    if tfma_not_run(evaluation):
        out.append('<p class="muted">TFMA did not run: it evaluates only models that passed '
                   "the retrieval gate (below), so that its blessing, the baseline of later "
                   "runs, is only ever a pushed model's.</p>")
        return "".join(out + _retrieval_section(evaluation))
    out.append(table(["output", "metric", "value", "threshold", "baseline", "change"], [
        [escape(r["output"]), escape(r["metric"]), fmt(r.get("value")), _bound(r),
         fmt(r.get("baseline")), fmt(r.get("diff"))]
        for r in tfma for fmt in [count if r["metric"].endswith("count") else num]])
               if tfma else missing("TFMA metrics"))
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
    return "".join(out + _retrieval_section(evaluation))


def _retrieval_section(evaluation: EvaluationSection) -> list[str]:
    out = ["<h3>Served retrieval and ranking (RetrievalEvaluator)</h3>"]
    retrieval = evaluation.get("retrieval") or {}
    metrics = retrieval.get(RETRIEVAL_METRICS) or {}
    if metrics:
        hit_rates = [at(HIT_RATE, k) for k in RETRIEVAL_KS if at(HIT_RATE, k) in metrics]
        ranking = [k for k in RANKING_METRICS if k in metrics]
        out.append(img(charts.model_vs_popularity(
            "retrieval: hit rate of the held-out items, full catalogue, vs popularity",
            metrics, hit_rates), "HR@K vs popularity"))
        out.append(img(charts.model_vs_popularity(
            "served top-10 (seen items excluded) vs popularity", metrics, ranking),
            "ranking vs popularity"))
        failed = retrieval.get(RETRIEVAL_FAILED) or {}
        users = metrics.get(EVAL_USERS)
        out.append(table(["bound", "threshold", "value", "standard error"
                           + (f" ({users:,} eval users)" if users else ""), "passed"], [
            [escape(name), num(bound),
             num(metrics[name]) if name in metrics else "skipped (no baseline model yet)",
             stderr(metrics.get(name + STDERR_SUFFIX)), "no" if name in failed else "yes"]
            for name, bound in (retrieval.get(RETRIEVAL_THRESHOLDS) or {}).items()]))
        for name in BEYOND_ACCURACY_METRICS:
            out.append(f"<p>{name}: {num(metrics.get(name))}</p>")
        blessed = evaluation.get("retrieval_blessed")
        out.append(verdict(blessed, "retrieval gate passed" if blessed else
                            "retrieval gate failed: " + ", ".join(failed)))
    else:
        out.append(missing("retrieval metrics"))
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
    encode = num(seconds.get(ENCODE_PHASE), 2) + cached
    out = [table(["encoder", "mode", "parameters", "embedding dim", "items encoded",
                   "encoding seconds"], [[
        escape(encoder.get("name") or encoder.get("mode") or ""), num(encoder.get("mode")),
        count(encoder.get("params")), num(encoder.get("embedding_dim")),
        count(encoder.get("num_items")), encode]])]
    if isinstance(config, Mapping):
        out.append(table(["setting", "value"], [[escape(k), "default" if v is None else num(v)]
                                                 for k, v in config.items()]))
    if mlm.get(MLM_LOSS_BEFORE) is not None:
        out.append(table(["MLM steps", "MLM seconds"],
                          [[count(mlm.get(MLM_STEPS)), num(mlm.get(MLM_SECONDS), 1)]]))
        out.append(img(charts.mlm_loss(mlm), "masked-LM loss"))
        out.append('<p class="muted">The per-step MLM curve is not recorded; start and end '
                   "losses are.</p>")
    elif mlm.get(MLM_STEPS):
        out.append(missing("MLM loss"))
    else:
        out.append('<p class="muted">Frozen: the encoder runs with its published weights; '
                   "this mode trains no masked-LM steps.</p>")
    return "".join(out)


def examples_section(examples: Sequence[ExampleUser]) -> str:
    if not examples:
        return missing("example recommendations (no pushed model)")
    out = []
    for user in examples:
        out.append(f"<h3>user {escape(user['user_id'])}</h3>")
        out.append(table(["#", "title", "item", "predicted rating", "score"], [
            [str(i), escape(r.get("title") or ""), escape(r["item_id"]),
             num(r["predicted_rating"], 2), num(r["score"], 3)]
            for i, r in enumerate(user["items"], 1)]))
        interest = user.get("interest")
        if interest:
            out.append(img(charts.genre_interest(user["user_id"], interest),
                            f"genre interest of user {user['user_id']}"))
        else:  # {}: the model knows no genres; None: a run before interests were recorded
            out.append('<p class="muted">genre interest: none (no item has genres)</p>'
                       if interest is not None else missing("genre interest"))
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
            f"<h1>mtrec run report</h1><p class=\"muted\">{escape(report.get('home'))} &middot; "
            f"built {escape(report.get('generated'))}</p><nav>{nav}</nav>{body}</body></html>")
