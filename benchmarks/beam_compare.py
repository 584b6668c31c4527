"""Component by component: do two pipeline runs (e.g. DirectRunner vs portable) agree?

    .venv/bin/mtrec run --home /tmp/direct --epochs 1 --no-text-encoder
    .venv/bin/mtrec run --home /tmp/portable --beam-runner portable --epochs 1 --no-text-encoder
    .venv/bin/python benchmarks/beam_compare.py /tmp/direct /tmp/portable

Each home's latest run is read from its ML Metadata (mtrec.run_state) and the
artifacts through mtrec.data.artifact_io, so the comparison follows what the
pipeline recorded, not guessed folders. A Beam runner may reorder and reshard
records, so examples are compared as multisets and statistics field by field
with a float tolerance (artifact_diff.py). The Transform graph is compared by
what it computes: both graphs transform the same raw batch (records of home A's
eval split). Everything after Transform depends on training, which is seeded
but need not be bit-reproducible across processes (on the sample it was).

Writes benchmarks/results/beam_compare.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.statistics_gen.stats_artifact_utils import BINARY_PB_BASENAME as STATS_FILE
from tfx.types import artifact_utils
from tfx.types.standard_component_specs import STATISTICS_KEY

from mtrec.components.anomaly_gate.executor import ANOMALIES_FILE
from mtrec.contracts import pipeline as P
from mtrec.contracts.artifacts import RETRIEVAL_METRICS_FILE, TRAINING_METRICS_FILE
from mtrec.data import artifact_io
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.run_state import NodeRun, custom_property, latest_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from artifact_diff import (
    compare_arrays,
    compare_examples,
    compare_flat,
    flatten_proto,
)
from beam_compare_report import render

if TYPE_CHECKING:
    from ml_metadata.proto import metadata_store_pb2
    from tensorflow_metadata.proto.v0 import statistics_pb2

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_PARTS = ("variables", "assets")  # SavedModel folders compared byte for byte
RAW_BATCH = 512  # raw records both transform graphs are applied to
STATS_REL_TOL = 1e-6
# Models trained in two processes need not be bit-identical: 0.02,
# absolute for metrics up to 1 (AUC, RMSE), relative above (example counts).
TFMA_TOL = 0.02


def _artifact(nodes: dict[str, NodeRun], node: str, key: str) -> metadata_store_pb2.Artifact:
    run = nodes.get(node)
    if run is None or not run.outputs.get(key):
        raise LookupError(f"no {key!r} output of {node} in this run")
    return run.outputs[key][0]


def _splits(artifact: metadata_store_pb2.Artifact) -> list[str]:
    return artifact_utils.decode_split_names(artifact.properties["split_names"].string_value)


def _records(directory: str) -> list[bytes]:
    return [r.numpy() for r in artifact_io.read_split(directory)]


def compare_example_gen(a: dict, b: dict, node: str) -> dict[str, Any]:
    """ExampleGen output: per split, the records as multisets, and the shard counts."""
    art_a, art_b = _artifact(a, node, P.EXAMPLES), _artifact(b, node, P.EXAMPLES)
    out = {}
    for split in _splits(art_a):
        da, db = artifact_io.split_dir(art_a.uri, split), artifact_io.split_dir(art_b.uri, split)
        out[split] = {**compare_examples(_records(da), _records(db)),
                      "files_a": len(artifact_io.split_files(da)),
                      "files_b": len(artifact_io.split_files(db))}
    return out


def _stats(artifact: metadata_store_pb2.Artifact, split: str
           ) -> statistics_pb2.DatasetFeatureStatisticsList:
    return tfdv.load_stats_binary(os.path.join(artifact_io.split_dir(artifact.uri, split),
                                               STATS_FILE))


def compare_statistics(a: dict, b: dict) -> dict[str, Any]:
    """StatisticsGen: every field of the per-split statistics, features keyed by path."""
    art_a = _artifact(a, P.STATISTICS_GEN, STATISTICS_KEY)
    art_b = _artifact(b, P.STATISTICS_GEN, STATISTICS_KEY)
    return {split: compare_flat(flatten_proto(_stats(art_a, split)),
                                flatten_proto(_stats(art_b, split)), STATS_REL_TOL)
            for split in _splits(art_a)}


def compare_anomalies(a: dict, b: dict) -> dict[str, Any]:
    """ExampleValidator (not Beam, but downstream of the statistics): anomalies per split."""
    art_a = _artifact(a, P.EXAMPLE_VALIDATOR, P.ANOMALIES)
    art_b = _artifact(b, P.EXAMPLE_VALIDATOR, P.ANOMALIES)

    def load(art: metadata_store_pb2.Artifact, split: str) -> anomalies_pb2.Anomalies:
        path = os.path.join(artifact_io.split_dir(art.uri, split), ANOMALIES_FILE)
        return anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, "rb").read())

    return {split: compare_flat(flatten_proto(load(art_a, split)),
                                flatten_proto(load(art_b, split)))
            for split in _splits(art_a)}


def _numpy(value: tf.Tensor | tf.SparseTensor | tf.RaggedTensor) -> dict[str, np.ndarray]:
    """A transform output as plain arrays (sparse: indices and values; ragged: parts)."""
    if isinstance(value, tf.SparseTensor):
        return {".indices": value.indices.numpy(), ".values": value.values.numpy(),
                ".dense_shape": value.dense_shape.numpy()}
    if isinstance(value, tf.RaggedTensor):
        return {".values": value.flat_values.numpy(),
                **{f".splits{i}": s.numpy() for i, s in enumerate(value.nested_row_splits)}}
    return {"": value.numpy()}


def _transform_outputs(tft_output: tft.TFTransformOutput, raw: list[bytes]
                       ) -> dict[str, np.ndarray]:
    parsed = tf.io.parse_example(tf.constant(raw), tft_output.raw_feature_spec())
    outputs = tft_output.transform_raw_features(parsed)
    return {f"{name}{part}": arr for name, value in outputs.items()
            for part, arr in _numpy(value).items()}


def _assets(uri: str) -> dict[str, bytes]:
    folder = os.path.join(uri, tft.TFTransformOutput.TRANSFORM_FN_DIR, "assets")
    if not tf.io.gfile.exists(folder):
        return {}
    return {name: tf.io.gfile.GFile(os.path.join(folder, name), "rb").read()
            for name in sorted(tf.io.gfile.listdir(folder))}


def compare_transform(a: dict, b: dict) -> dict[str, Any]:
    """Transform: the graphs' outputs on one raw batch, their vocabularies, the examples."""
    graph_a = _artifact(a, P.TRANSFORM, P.TRANSFORM_GRAPH).uri
    graph_b = _artifact(b, P.TRANSFORM, P.TRANSFORM_GRAPH).uri
    raw_dir = artifact_io.split_dir(_artifact(a, P.EXAMPLE_GEN, P.EXAMPLES).uri, P.EVAL_SPLIT)
    raw = [r.numpy() for r in artifact_io.read_split(raw_dir).take(RAW_BATCH)]
    outputs = compare_arrays(_transform_outputs(tft.TFTransformOutput(graph_a), raw),
                             _transform_outputs(tft.TFTransformOutput(graph_b), raw))
    assets_a, assets_b = _assets(graph_a), _assets(graph_b)
    assets = {name: assets_a.get(name) == assets_b.get(name)
              for name in sorted(set(assets_a) | set(assets_b))}
    ex_a = _artifact(a, P.TRANSFORM, P.TRANSFORMED_EXAMPLES)
    ex_b = _artifact(b, P.TRANSFORM, P.TRANSFORMED_EXAMPLES)
    examples = {split: compare_examples(_records(artifact_io.split_dir(ex_a.uri, split)),
                                        _records(artifact_io.split_dir(ex_b.uri, split)))
                for split in _splits(ex_a)}
    return {"raw_batch": len(raw), "graph_outputs": outputs, "assets_equal": assets,
            "transformed_examples": examples}


def _tfma(uri: str) -> dict[str, float]:
    out = {}
    for result in tfma.load_metrics(uri):
        for kv in result.metric_keys_and_values:
            k = kv.key
            if kv.value.HasField("double_value"):
                out[f"{k.model_name or 'candidate'}/{k.output_name}/{k.name}"
                    f"{'/diff' if k.is_diff else ''}"] = kv.value.double_value.value
    return out


def compare_evaluator(a: dict, b: dict) -> dict[str, Any]:
    """Evaluator (TFMA on Beam): every double metric, and both blessings."""
    ev_a, ev_b = _artifact(a, P.EVALUATOR, P.EVALUATION), _artifact(b, P.EVALUATOR, P.EVALUATION)
    blessed = [custom_property(_artifact(n, P.EVALUATOR, P.BLESSING), P.BLESSED) for n in (a, b)]
    return {**compare_flat(_tfma(ev_a.uri), _tfma(ev_b.uri), rel_tol=TFMA_TOL),
            "blessed": blessed}


def _json(uri: str, name: str) -> dict[str, Any]:
    with tf.io.gfile.GFile(os.path.join(uri, name)) as f:
        return json.load(f)


def _numbers(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_numbers(v, f"{prefix}{k}."))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = v
    return out


def compare_downstream(a: dict, b: dict) -> dict[str, Any]:
    """Trainer metrics, RetrievalEvaluator metrics, pushes (not Beam: depend on training)."""
    out = {}
    for node, key, name in ((P.TRAINER, P.MODEL_RUN, TRAINING_METRICS_FILE),
                            (P.RETRIEVAL_EVALUATOR, P.BLESSING, RETRIEVAL_METRICS_FILE)):
        na, nb = (_numbers(_json(_artifact(n, node, key).uri, name)) for n in (a, b))
        na = {k: v for k, v in na.items() if "seconds" not in k}  # timings differ anyway
        nb = {k: v for k, v in nb.items() if "seconds" not in k}
        out[node] = compare_flat(na, nb, rel_tol=0.0)
    pushed = [_artifact(n, P.PUSHER, P.PUSHED_MODEL) for n in (a, b)]
    out[P.PUSHER] = {"pushed": [bool(custom_property(p, P.PUSHED)) for p in pushed]}
    if all(out[P.PUSHER]["pushed"]):
        files = [_model_files(_pushed_destination(p)) for p in pushed]
        out[P.PUSHER]["files_equal"] = {
            name: files[0].get(name) == files[1].get(name)
            for name in sorted(set(files[0]) | set(files[1]))}
    return out


def _pushed_destination(artifact: metadata_store_pb2.Artifact) -> str:
    """Where a pushed model went (the Pusher records it as a string property)."""
    destination = custom_property(artifact, P.PUSHED_DESTINATION)
    if not isinstance(destination, str):
        raise LookupError(f"pushed model without a {P.PUSHED_DESTINATION}: {destination!r}")
    return destination


def _model_files(directory: str) -> dict[str, bytes]:
    """A pushed SavedModel's weights and vocabularies (MODEL_PARTS), by relative path.

    The graph (saved_model.pb) and its fingerprint are left out: they embed
    paths and ids that differ between any two exports of the same model.
    """
    out = {}
    for part in MODEL_PARTS:
        folder = os.path.join(directory, part)
        for name in tf.io.gfile.listdir(folder) if tf.io.gfile.isdir(folder) else []:
            with tf.io.gfile.GFile(os.path.join(folder, name), "rb") as f:
                out[f"{part}/{name}"] = f.read()
    return out


def compare_homes(home_a: str, home_b: str) -> dict[str, Any]:
    for home in (home_a, home_b):
        if not os.path.exists(LocalPaths(home).metadata_path):
            raise SystemExit(f"{home}: not a pipeline home (no {LocalPaths(home).metadata_path})")
    a, b = (latest_run(LocalPaths(home).metadata_path) for home in (home_a, home_b))
    for home, nodes in ((home_a, a), (home_b, b)):
        if not nodes:
            raise SystemExit(f"{home}: no pipeline run recorded in its metadata")
    return {
        "homes": [home_a, home_b],
        "states": {n: [a[n].state if n in a else None, b[n].state if n in b else None]
                   for n in sorted(set(a) | set(b))},
        P.EXAMPLE_GEN: compare_example_gen(a, b, P.EXAMPLE_GEN),
        P.CATALOG_GEN: compare_example_gen(a, b, P.CATALOG_GEN),
        P.STATISTICS_GEN: compare_statistics(a, b),
        P.EXAMPLE_VALIDATOR: compare_anomalies(a, b),
        P.TRANSFORM: compare_transform(a, b),
        P.EVALUATOR: compare_evaluator(a, b),
        **compare_downstream(a, b),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("home_a", help="pipeline home of run A (e.g. the DirectRunner's)")
    p.add_argument("home_b", help="pipeline home of run B (e.g. the portable runner's)")
    p.add_argument("--labels", nargs=2, default=["direct", "portable"])
    p.add_argument("--note", action="append", default=[], help="a line for the report")
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    result = {"labels": args.labels, "notes": args.note, **compare_homes(args.home_a,
                                                                          args.home_b)}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "beam_compare.json").write_text(json.dumps(result, indent=2, default=str))
    text = render(result)
    (out / "beam_compare.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
