"""The run report as one self-contained HTML page (inline CSS, plots as data URIs).

`render` takes collect.py's plain data and returns the page; it reads no file,
so tests render hand-made data in milliseconds. A value nothing recorded is
shown as "not recorded", never left out silently; a section whose component failed
or never ran says that instead (stopped_components). The Training and Evaluation
sections are page_training.py's and page_evaluation.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mtrec.contracts.artifacts import (
    ENCODE_PHASE,
    INGEST_ITEMS,
    INGEST_ITEMS_WITH_TEXT,
    INGEST_ROWS,
    INGEST_SOURCE,
    INGEST_SPLIT_RULE,
    INGEST_USERS,
    MLM_LOSS_BEFORE,
    MLM_SECONDS,
    MLM_STEPS,
)
from mtrec.contracts.pipeline import CATALOG_SPLIT, EVAL_SPLIT, PUSHER, TRAIN_SPLIT
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
    stopped_note,
    table,
    verdict,
)
from mtrec.report.page_evaluation import evaluation_section
from mtrec.report.page_training import training_section
from mtrec.report.schema import (
    DataSection,
    ExampleUser,
    PipelineSection,
    Report,
    TextEncoderSection,
)
from mtrec.run_state import FAILED, RUNNING
from mtrec.summary import ingest_report

SECTIONS = ("data", "pipeline", "training", "evaluation", "text-encoder", "examples")
SPLIT_ORDER = (TRAIN_SPLIT, EVAL_SPLIT, CATALOG_SPLIT)  # as the terminal summary lists them


def source_line(data: Mapping | None) -> str:
    """Which data the run read and how it chose the eval rows, or "" when unrecorded."""
    report = ingest_report(data)
    source, rule = report.get(INGEST_SOURCE), report.get(INGEST_SPLIT_RULE)
    if not source:
        return ""
    split = f" (eval split: {escape(rule)})" if rule else ""
    return f"<p>data: <code>{escape(source)}</code>{split}</p>"


def data_section(data: DataSection) -> str:
    out = [source_line(data)]
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
    ordered = sorted(rows or {}, key=lambda k: (SPLIT_ORDER + (k,)).index(k))
    out.append(table(["split", "rows"], [[escape(k), num(rows[k])] for k in ordered])
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


def stopped_components(pipeline: PipelineSection) -> dict[str, str]:
    """Component -> how it left nothing ("failed", "did not run (...)"), for a run that
    stopped: a component failed or was killed (still RUNNING). The sections say this
    where they would otherwise say "not recorded"."""
    components = pipeline.get("components") or []
    failed = [c["id"] for c in components if c["state"] == FAILED]
    killed = [c["id"] for c in components if c["state"] == RUNNING]
    stopped = {node: "failed" for node in failed}
    stopped.update({node: "did not finish (killed)" for node in killed})
    why = (f"when {', '.join(failed)} failed" if failed else
           f"while {', '.join(killed)} ran" if killed else "early")
    stopped.update({node: f"did not run (the run stopped {why})"
                    for node in pipeline.get("not_run") or []})
    return stopped


def pipeline_section(pipeline: PipelineSection) -> str:
    components = pipeline.get("components") or []
    not_run = pipeline.get("not_run") or []
    out = [img(charts.timeline(components), "pipeline timeline")] if components else [
        missing("component executions (ML Metadata)")]
    # A RUNNING execution of the latest run was killed (or still runs): no end recorded.
    out.append(table(["component", "status", "cached", "wall time (s)"], [
        *([escape(c["id"]), escape(c["state"]), "yes" if c["cached"] else "no",
           "not finished" if c["state"] == RUNNING else f"{c['seconds']:.1f}"]
          for c in components),
        *([escape(node), "did not run", "&ndash;", "&ndash;"] for node in not_run)]))
    failed = [c["id"] for c in components if c["state"] == FAILED]
    if failed:
        error = pipeline.get("error")
        out.append(verdict(False, f"{', '.join(failed)} failed"
                           + (f": {error}" if error else "")))
    if not_run:
        out.append(f"<p>did not run: {escape(', '.join(not_run))}</p>")
    if pipeline.get("log") and failed:
        out.append(f"<p>the error and its traceback: <code>{escape(pipeline['log'])}</code> "
                   "(in the run's home)</p>")
    if pipeline.get("beam"):
        out.append(f"<p>Beam stages: {escape(pipeline['beam'])}</p>")
    if pipeline.get("pushed_to"):
        again = " (already served: no new version)" if pipeline.get("already_served") else ""
        out.append(verdict(True, f"pushed: {pipeline['pushed_to']}{again}"))
    else:
        out.append(verdict(False, f"nothing pushed: {pipeline.get('not_pushed')}"))
    return "".join(out)


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


def examples_section(examples: Sequence[ExampleUser],
                     stopped: Mapping[str, str] | None = None) -> str:
    if not examples:
        if stopped and PUSHER in stopped:
            return stopped_note("example recommendations", PUSHER, stopped)
        return missing("example recommendations (no pushed model)")
    out = []
    for user in examples:
        out.append(f"<h3>user {escape(user['user_id'])}</h3>")
        out.append(table(["#", "title", "item", "predicted rating", "score"], [
            [str(i), escape(r.get("title") or ""), escape(r["item_id"]),
             num(r["rating"], 2), num(r["score"], 3)]
            for i, r in enumerate(user["items"], 1)]))
        interest = user.get("interest")
        if interest:
            out.append(img(charts.genre_interest(user["user_id"], interest),
                            f"genre interest of user {user['user_id']}"))
        else:  # {}: the model knows no genres; None: a run before interests were recorded
            out.append('<p class="muted">genre interest: none (the items have no genres, '
                       'or one: the task was left out)</p>'
                       if interest is not None else missing("genre interest"))
    return "".join(out)


def render(report: Report) -> str:
    """The whole page for collect.collect()'s data."""
    pipeline = report.get("pipeline") or {}
    stopped = stopped_components(pipeline)
    sections = {  # SECTIONS' id -> (heading, body)
        "data": ("Data", data_section(report.get("data") or {})),
        "pipeline": ("Pipeline", pipeline_section(pipeline)),
        "training": ("Training", training_section(report.get("training") or {}, stopped)),
        "evaluation": ("Evaluation", evaluation_section(report.get("evaluation") or {},
                                                        stopped)),
        "text-encoder": ("Text encoder", text_encoder_section(
            report.get("text_encoder"),
            ingest_report(report.get("data")).get(INGEST_ITEMS_WITH_TEXT))),
        "examples": ("Examples", examples_section(report.get("examples") or [], stopped)),
    }
    source = ingest_report(report.get("data")).get(INGEST_SOURCE)
    data = f"data {escape(source)} &middot; " if source else ""
    nav = "".join(f'<a href="#{s}">{sections[s][0]}</a>' for s in SECTIONS)
    body = "".join(f'<section id="{s}"><h2>{sections[s][0]}</h2>{sections[s][1]}</section>'
                   for s in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>mtrec run report</title><style>{CSS}</style></head><body>"
            f"<h1>mtrec run report</h1><p class=\"muted\">{data}{escape(report.get('home'))} "
            f"&middot; built {escape(report.get('generated'))}</p><nav>{nav}</nav>{body}"
            "</body></html>")
