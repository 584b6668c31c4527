"""SavedModel warmup records, written at export time and replayed on load.

The first call of each signature pays for graph initialisation and lazy
kernel set-up; TF Serving hides that by replaying
`assets.extra/tf_serving_warmup_requests` (a TFRecord of `PredictionLog`s)
before a version starts taking traffic. `write_warmup_requests` produces that
file in the format TF Serving reads, and `replay_warmup` is what the embedded
server does with it, so both servers warm the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from mtrec.contracts import signatures as S
from mtrec.serving import handlers, tensor_codec
from mtrec.serving.model_manager import WARMUP_FILE, Servable
from mtrec.serving.signature import read_signature_defs

# TF Serving refuses warmup files with more records than this.
MAX_WARMUP_RECORDS = 1000

WarmupRequest: TypeAlias = tuple[str, Mapping[str, Any]] | predict_pb2.PredictRequest


def write_warmup_requests(
    saved_model_dir: str,
    requests: Sequence[WarmupRequest],
    model_name: str = S.MODEL_NAME,
) -> str:
    """Write `requests` as the warmup file of `saved_model_dir`; returns its path.

    Each request is a ready `PredictRequest` or a `(signature_name, inputs)`
    pair whose values are cast to the dtypes the signature declares (so
    `{"k": 10}` becomes int32), failing here rather than at load time if a
    signature or input does not exist.
    """
    if len(requests) > MAX_WARMUP_RECORDS:
        raise ValueError(f"at most {MAX_WARMUP_RECORDS} warmup requests, got {len(requests)}")
    sig_defs = read_signature_defs(saved_model_dir)
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for item in requests:
            if isinstance(item, predict_pb2.PredictRequest):
                request = item
            else:
                request = _build_request(sig_defs, model_name, *item)
            log = prediction_log_pb2.PredictionLog()
            log.predict_log.request.CopyFrom(request)
            writer.write(log.SerializeToString())
    return path


def _build_request(
    sig_defs: Mapping[str, Any], model_name: str, signature: str, inputs: Mapping[str, Any]
) -> predict_pb2.PredictRequest:
    if signature not in sig_defs:
        raise ValueError(f"warmup signature '{signature}' not in the model: {sorted(sig_defs)}")
    declared = sig_defs[signature].inputs
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        if key not in declared:
            raise ValueError(f"warmup input '{key}' not in signature '{signature}'")
        dtype = tf.dtypes.as_dtype(declared[key].dtype)
        request.inputs[key].CopyFrom(tensor_codec.encode(value, dtype))
    return request


def read_warmup_logs(saved_model_dir: str) -> list[prediction_log_pb2.PredictionLog]:
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    if not os.path.exists(path):
        return []
    logs = []
    for record in tf.data.TFRecordDataset(path):
        logs.append(prediction_log_pb2.PredictionLog.FromString(record.numpy()))
        if len(logs) > MAX_WARMUP_RECORDS:
            raise ValueError(f"more than {MAX_WARMUP_RECORDS} warmup records in {path}")
    return logs


def replay_warmup(servable: Servable) -> int:
    """Replay the version's warmup records against it; any failure fails the load.

    Like TF Serving, the request's model name/version are ignored: the records
    target whichever version they ship in.
    """
    count = 0
    for log in read_warmup_logs(servable.path):
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            handlers.predict(servable, log.predict_log.request)
        elif kind == "classify_log":
            handlers.classify(servable, log.classify_log.request)
        elif kind == "regress_log":
            handlers.regress(servable, log.regress_log.request)
        else:
            raise ValueError(f"unsupported warmup record type: {kind}")
        count += 1
    return count
