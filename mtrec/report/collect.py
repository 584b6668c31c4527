"""Everything the run report shows, read back from a run's home as plain data.

Sources, all written by the run itself, so `mtrec report HOME` needs no
retraining: ML Metadata (states, times, artifacts, exec properties), the
artifacts (TensorBoard logs, TFMA results, anomalies, examples), the pushed
SavedModel (the example users' top-10 and genre interests), and the run's
summary.json (ingestion counts, which exist before any component runs).
A value nothing recorded stays None; the page says "not recorded".
"""

from __future__ import annotations

import collections
import json
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

from mtrec.components.text_encoder.config import TextEncoderConfig
from mtrec.components.text_encoder.export import load_metadata
from mtrec.console import LOG_DIR, LOG_FILE
from mtrec.contracts import artifacts as A
from mtrec.contracts import features as F
from mtrec.contracts import pipeline as P
from mtrec.contracts import signatures as S
from mtrec.contracts.metrics import TFMA_KEYS
from mtrec.data.artifact_io import read_files, split_dir, split_files
from mtrec.data.example_records import CatalogueEntry, catalogue, first_users
from mtrec.data.labels import like_rule, single_like_class
from mtrec.models.weights_file import load_config
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.report.schema import (
    ComponentRow,
    ExampleUser,
    Report,
    TextEncoderSection,
    TrainedConfig,
)
from mtrec.report.stopped_run import failed_error, not_run
from mtrec.run_state import CACHED, NodeRun, latest_run, output_uri
from mtrec.summary import (
    SUMMARY_FILE,
    RunSummary,
    implicit_feedback,
    ingest_report,
    not_pushed_reason,
    recommendation_rows,
)
from mtrec.summary import collect as collect_summary

if TYPE_CHECKING:
    pass

RUN_LOG = os.path.join(LOG_DIR, LOG_FILE)  # relative: the page stays right in a moved home
EXAMPLE_USERS = 3
TOP_K = 10
TFMA_OUTPUTS = (F.OUT_RATING, F.OUT_RELEVANCE)


def _split_files(artifact_uri: str, split: str) -> list[str]:
    return split_files(split_dir(artifact_uri, split), required=False)


def components(nodes: dict[str, NodeRun]) -> list[ComponentRow]:
    """Each component's state, cache hit and wall time, in start order."""
    rows: list[ComponentRow] = []
    for node_id, node in nodes.items():
        ex = node.execution
        start = ex.create_time_since_epoch if ex else 0
        end = ex.last_update_time_since_epoch if ex else 0
        rows.append({"id": node_id, "state": node.state, "cached": node.state == CACHED,
                     "start_s": start / 1000, "seconds": max(end - start, 0) / 1000})
    rows.sort(key=lambda r: r["start_s"])
    t0 = rows[0]["start_s"] if rows else 0
    for r in rows:
        r["start_s"] = round(r["start_s"] - t0, 3)
    return rows


def rating_histogram(nodes: dict[str, NodeRun], split: str) -> dict[str, int] | None:
    """Ratings per value in one split of ImportExampleGen's examples.

    Parsed in batches of 8,192 (not one tf.train.Example at a time in Python):
    on the sample's 32,020 train rows 1.3 s against 20.9 s for a per-record loop.
    """
    uri = output_uri(nodes.get(P.EXAMPLE_GEN), P.EXAMPLES)
    files = _split_files(uri, split) if uri else []
    if not files:
        return None
    spec = {F.RATING: tf.io.FixedLenFeature([], tf.float32)}
    batches = read_files(files).batch(8192).map(
        lambda records: tf.io.parse_example(records, spec)[F.RATING])
    ratings = np.concatenate([np.zeros(0, np.float32), *batches.as_numpy_iterator()])
    values, counts = np.unique(ratings, return_counts=True)
    return {f"{v:g}": int(n) for v, n in zip(values.tolist(), counts.tolist(), strict=True)}


def anomalies(nodes: dict[str, NodeRun]) -> dict[str, list[str]] | None:
    """ExampleValidator's anomalies per split: 'feature: description' lines."""
    uri = output_uri(nodes.get(P.EXAMPLE_VALIDATOR), P.ANOMALIES)
    if not uri:
        return None
    found = {}
    pattern = os.path.join(uri, P.SPLIT_DIR_PREFIX + "*", "SchemaDiff.pb")
    for path in sorted(tf.io.gfile.glob(pattern)):
        proto = anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, "rb").read())
        split = os.path.basename(os.path.dirname(path)).removeprefix(P.SPLIT_DIR_PREFIX)
        found[split] = [f"{name}: {info.description or info.short_description}"
                        for name, info in sorted(proto.anomaly_info.items())]
    return found


def curves(nodes: dict[str, NodeRun]) -> dict[str, dict[str, list[float]]] | None:
    """{phase: {metric: value per epoch}} from the Trainer's TensorBoard logs."""
    run_uri = output_uri(nodes.get(P.TRAINER), P.MODEL_RUN)
    if not run_uri:
        return None
    out: dict[str, dict[str, list[float]]] = {}
    for phase in ("train", "validation"):
        per_epoch: dict[str, dict[int, float]] = collections.defaultdict(dict)
        for path in tf.io.gfile.glob(os.path.join(run_uri, A.TENSORBOARD_DIR, phase, "events.*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.tag.startswith("epoch_"):
                        number = (tf.make_ndarray(value.tensor).item()
                                  if value.HasField("tensor") else value.simple_value)
                        per_epoch[value.tag.removeprefix("epoch_")][event.step] = float(number)
        out[phase] = {tag: [steps[s] for s in sorted(steps)] for tag, steps in per_epoch.items()}
    return out


def model_config(nodes: dict[str, NodeRun]) -> TrainedConfig | None:
    """The Trainer's resolved ModelConfig (saved next to its weights)."""
    run_uri = output_uri(nodes.get(P.TRAINER), P.MODEL_RUN)
    weights = os.path.join(run_uri, A.WEIGHTS_DIR) if run_uri else None
    if not weights or not tf.io.gfile.exists(weights):
        return None
    config = load_config(weights)
    return {"loss_weights": dict(config.loss_weights), "tasks": list(config.tasks),
            "uncertainty_weighting": config.uncertainty_weighting,
            "optimizer": config.optimizer, "epochs": config.epochs}


def tfma_table(nodes: dict[str, NodeRun]) -> list[dict[str, Any]]:
    """TFMA metrics of the candidate, the baseline and their difference, with thresholds."""
    import tensorflow_model_analysis as tfma  # heavy (Beam): only for a run where TFMA ran

    evaluator = nodes.get(P.EVALUATOR)
    uri = output_uri(evaluator, P.EVALUATION)
    if not uri:
        return []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for result in tfma.load_metrics(uri):
        for kv in result.metric_keys_and_values:
            key = kv.key
            if key.output_name not in TFMA_OUTPUTS or not kv.value.HasField("double_value"):
                continue
            row = rows.setdefault((key.output_name, key.name),
                                  {"output": key.output_name, "metric": key.name})
            role = ("diff" if key.is_diff else
                    "baseline" if key.model_name == "baseline" else "value")
            row[role] = kv.value.double_value.value
    bounds = _thresholds(evaluator)
    for (output, name), row in rows.items():
        row.update(bounds.get((output, name), {}))
    return sorted(rows.values(), key=lambda r: (r["output"], r["metric"]))


def _thresholds(evaluator: NodeRun | None) -> dict[tuple[str, str], dict[str, Any]]:
    """(output, metric name) -> its value/change bounds, from the Evaluator's eval_config."""
    ex = evaluator.execution if evaluator else None
    if ex is None or "eval_config" not in ex.custom_properties:
        return {}
    config = json.loads(ex.custom_properties["eval_config"].string_value)
    out = {}
    for spec in config.get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            threshold = metric.get("threshold")
            if not threshold:
                continue
            name = TFMA_KEYS.get(metric["class_name"], metric["class_name"])
            for output in spec.get("output_names", [""]):
                value = threshold.get("value_threshold", {})
                change = threshold.get("change_threshold", {})
                out[(output, name)] = {
                    "lower_bound": value.get("lower_bound"),
                    "upper_bound": value.get("upper_bound"),
                    "max_change": change.get("absolute"),
                    "direction": change.get("direction"),
                }
    return out


def tfma_verdict(summary: RunSummary) -> str | None:
    """One line: why TFMA blessed the model or not (from the summary, which read
    TFMA's blessing and its failed thresholds)."""
    blessed = summary.get("tfma_blessed")
    if blessed is None:
        return None
    if blessed:
        return "blessed: every TFMA threshold passed"
    return "not blessed: " + ("; ".join(summary.get("tfma_failed") or [])
                              or "no baseline or no data")


def example_users(nodes: dict[str, NodeRun], split: str, n: int) -> list[str]:
    """The first `n` distinct users of a split (the report's example users)."""
    uri = output_uri(nodes.get(P.EXAMPLE_GEN), P.EXAMPLES)
    return first_users(_split_files(uri, split) if uri else [], n)


def _catalogue(nodes: dict[str, NodeRun], split: str) -> dict[str, CatalogueEntry]:
    uri = output_uri(nodes.get(P.CATALOG_GEN), P.EXAMPLES)
    return catalogue(_split_files(uri, split) if uri else [])


def examples(nodes: dict[str, NodeRun], model_dir: str | None) -> list[ExampleUser]:
    """Top-10 (title, predicted rating, score) and genre interests of a few eval users."""
    if not model_dir:
        return []
    catalogue = _catalogue(nodes, P.CATALOG_SPLIT)
    model = tf.saved_model.load(model_dir)  # once: loading dominates (seconds per load)
    interest = model.signatures[S.USER_INTEREST]
    out: list[ExampleUser] = []
    for user in example_users(nodes, P.EVAL_SPLIT, EXAMPLE_USERS):
        items = recommendation_rows(model, user, TOP_K)
        for item in items:
            known = catalogue.get(item["item_id"])
            item["title"] = known["title"] if known else ""
            item["genres"] = known["genres"] if known else []
        genres = interest(user_id=tf.constant([user]))
        out.append({"user_id": user, "items": items, "interest": {
            g.decode(): round(float(s), 4)
            for g, s in zip(genres[S.GENRES].numpy()[0], genres[S.SCORES].numpy()[0],
                            strict=True)}})
    return out


def recorded_home(nodes: dict[str, NodeRun], paths: LocalPaths) -> str | None:
    """The home the run was made in: ML Metadata keeps absolute artifact URIs
    (`<that home>/pipeline_root/...`), so a home copied or moved elsewhere still names it."""
    marker = os.sep + os.path.relpath(paths.pipeline_root, paths.home) + os.sep
    for node in nodes.values():
        for artifacts in node.outputs.values():
            for artifact in artifacts:
                if marker in artifact.uri:
                    return artifact.uri.rsplit(marker, 1)[0]
    return None


def rebase(path: Any, old: str | None, new: str) -> Any:
    """`path` under `new` if it lies under `old` (the recorded home); else as it is."""
    if not old or old == new or not isinstance(path, str):
        return path
    if path == old or path.startswith(old + os.sep):
        return new + path[len(old):]
    return path


def rebase_nodes(nodes: dict[str, NodeRun], old: str | None, new: str) -> None:
    """Point every artifact URI (and the Pusher's destination) recorded under `old` at the
    same place under `new`, so a copied home reads its own files, not the original's."""
    for node in nodes.values():
        for artifacts in node.outputs.values():
            for artifact in artifacts:
                artifact.uri = rebase(artifact.uri, old, new)
                pushed = artifact.custom_properties.get(P.PUSHED_DESTINATION)
                if pushed is not None and pushed.HasField("string_value"):
                    pushed.string_value = rebase(pushed.string_value, old, new)


def collect(home: str) -> Report:
    """The report's data for the latest run in `home` (an `mtrec run` output folder)."""
    paths = LocalPaths(os.path.abspath(home))
    if not os.path.exists(paths.metadata_path):
        raise FileNotFoundError(f"{home}: no {os.path.basename(paths.metadata_path)}; "
                                "is it an `mtrec run` output folder?")
    nodes = latest_run(paths.metadata_path)
    if not nodes:
        raise FileNotFoundError(f"{home}: {os.path.basename(paths.metadata_path)} records no "
                                "pipeline run")
    old_home = recorded_home(nodes, paths)
    rebase_nodes(nodes, old_home, paths.home)
    summary = collect_summary(nodes)
    saved = {}
    summary_path = os.path.join(home, SUMMARY_FILE)
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            saved = json.load(f)
    if saved.get("data"):
        saved["data"]["rejects_path"] = rebase(saved["data"].get("rejects_path"), old_home,
                                               paths.home)
    model_dir = summary.get("pushed_to")
    ingest = ingest_report(saved.get("data"))
    log = RUN_LOG if os.path.exists(os.path.join(home, RUN_LOG)) else None
    return {
        "home": os.path.abspath(home),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "data": {
            **(saved.get("data") or {}),
            "rating_histogram": {split: rating_histogram(nodes, split)
                                 for split in (P.TRAIN_SPLIT, P.EVAL_SPLIT)},
            "anomalies": anomalies(nodes),
        },
        "pipeline": {"components": components(nodes), "pushed_to": model_dir,
                     "already_served": bool(summary.get("already_served")),
                     "not_pushed": not_pushed_reason(summary, summary["components"]),
                     "log": log, "not_run": not_run(nodes), "beam": saved.get("beam"),
                     "error": failed_error(nodes, log and os.path.join(home, log))},
        "training": {"metrics": summary.get("training"), "curves": curves(nodes),
                     "config": model_config(nodes), "like_rule": like_rule(ingest),
                     "pushed": bool(model_dir)},
        "evaluation": {"tfma": tfma_table(nodes), "tfma_blessed": summary.get("tfma_blessed"),
                       "tfma_verdict": tfma_verdict(summary),
                       "retrieval": summary.get("retrieval"),
                       "retrieval_blessed": summary.get("retrieval_blessed"),
                       "implicit_feedback": implicit_feedback(saved.get("data")),
                       "like_rule": like_rule(ingest),
                       "one_like_class": single_like_class(ingest)},
        "text_encoder": _text_encoder(nodes),
        "examples": examples(nodes, model_dir),
    }


def _text_encoder(nodes: dict[str, NodeRun]) -> TextEncoderSection | None:
    meta = load_metadata(output_uri(nodes.get(P.TEXT_ENCODER), P.ITEM_TEXT_EMBEDDINGS))
    if meta is None:
        return None
    config = meta.get(A.ENCODER_CONFIG)
    if isinstance(config, dict):  # only what the mode reads (a frozen MiniLM: no sizes)
        config = TextEncoderConfig.from_exec_properties(config).settings_in_use()
        config["sequence_length"] = meta.get(A.ENCODER_SEQUENCE_LENGTH, config["sequence_length"])
    return {"mode": meta.get(A.ENCODER_MODE), "name": meta.get(A.ENCODER_NAME),
            "params": meta.get(A.ENCODER_PARAMS), "embedding_dim": meta.get(A.ENCODED_DIM),
            "num_items": meta.get(A.ENCODED_ITEMS), "encode_cached": meta.get(A.ENCODE_CACHED),
            "config": config if isinstance(config, dict) else str(config),
            "mlm": meta.get(A.MLM_REPORT) or {}, "seconds": meta.get(A.ENCODER_SECONDS) or {}}
