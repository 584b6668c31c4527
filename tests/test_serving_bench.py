"""The serving benchmark's own pieces: the grown real catalogue and the kept analysis."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from mtrec.contracts import features as F
from mtrec.models.serving_tables import ServingTables

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import grpc_floor  # noqa: E402
import real_catalogue  # noqa: E402
import serving_report  # noqa: E402


def _tables() -> ServingTables:
    return ServingTables(
        item_ids=np.array([b"a", b"b", b"c"], dtype=object),
        item_features={
            F.ITEM_IDX: np.array([1, 2, 3]),
            F.GENRES_MULTI_HOT: np.array([[1, 0], [2, 3], [4, 0]]),
        },
        profiles={},
        seen_splits=np.array([0, 1]),
        seen_positions=np.array([2]),
        rated_splits=np.array([0, 1]),
        rated_idx=np.array([3]),
        rating_mean=3.5,
        num_train_examples=1,
        sample_user_ids=np.array([b"u"], dtype=object),
    )


def test_grown_catalogue_keeps_the_real_items_first_and_repeats_their_features():
    big = real_catalogue.grown_tables(_tables(), 7)
    assert big.item_ids.tolist() == [b"a", b"b", b"c", b"syn-3", b"syn-4", b"syn-5", b"syn-6"]
    assert big.item_features[F.ITEM_IDX].tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert big.item_features[F.GENRES_MULTI_HOT][5].tolist() == [4, 0]  # row 5 = real row 2
    assert big.seen_positions.tolist() == [2]  # positions of real items stay valid
    with pytest.raises(ValueError, match="smaller than the real one"):
        real_catalogue.grown_tables(_tables(), 2)


def test_chunked_tower_equals_one_call(monkeypatch):
    monkeypatch.setattr(real_catalogue, "_CHUNK", 2)
    calls = []

    def tower(x: dict, training: bool = False) -> tf.Tensor:
        calls.append(int(x["a"].shape[0]))
        return tf.cast(x["a"], tf.float32)[:, None] * 2.0

    x = {"a": tf.range(5)}
    got = real_catalogue._chunked(tower)(x)
    np.testing.assert_array_equal(got.numpy()[:, 0], [0, 2, 4, 6, 8])
    assert calls == [2, 2, 1]


def test_rerun_keeps_the_hand_written_analysis(tmp_path):
    md = tmp_path / "serving.md"
    assert serving_report.kept_analysis(str(md)) == ""
    md.write_text("# old tables\n" + serving_report.ANALYSIS + "\n## Breakdown\ntext\n")
    expected = "\n" + serving_report.ANALYSIS + "\n## Breakdown\ntext\n"
    assert serving_report.kept_analysis(str(md)) == expected
    md.write_text("# tables only\n")
    assert serving_report.kept_analysis(str(md)) == ""


def test_the_floor_servers_answer_with_each_handler():
    """benchmarks/grpc_tf_call.py's echo servers start and answer Predict with an empty
    response, sync and grpc.aio; the TF handlers really run their trivial function
    (x * 2 + 1) three ways, and a non-empty handler reports how long its work took."""
    for make in (
        grpc_floor.trivial_tf_call,
        grpc_floor.trivial_direct_call,
        grpc_floor.trivial_session_call,
    ):
        got = make()()
        got = got[0] if isinstance(got, list) else got
        np.testing.assert_allclose(np.asarray(got), [3.0, 5.0])
    ask = predict_pb2.PredictRequest()
    ask.model_spec.name = grpc_floor.WORK_TIMES
    cases = [("sync", h) for h in grpc_floor.HANDLERS] + [("aio", "empty"), ("aio", "spin")]
    for kind, handler in cases:
        with grpc_floor.EchoServer(threads=2, handler=handler, kind=kind) as server:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(
                grpc.insecure_channel(server.target)
            )
            for _ in range(3):
                assert stub.Predict(predict_pb2.PredictRequest(), timeout=60) == (
                    predict_pb2.PredictResponse()
                )
            if handler == "empty":
                continue
            wall, cpu = tf.make_ndarray(
                stub.Predict(ask, timeout=60).outputs[grpc_floor.WORK_TIMES]
            )
            assert wall > 0 and cpu > 0, (kind, handler)
            if handler == "spin":  # a busy wait of SPIN_SECONDS, in microseconds
                assert wall >= grpc_floor.SPIN_SECONDS * 1e6
    with pytest.raises(RuntimeError, match="did not start"):
        grpc_floor.EchoServer(threads=2, handler="no-such-handler", timeout=60)


def test_the_floor_server_pins_itself_like_mtrec_serve():
    """serving.py --server-cpus gives the echo server the same `--cpus` as `mtrec serve`:
    every one of its threads runs on those CPUs only."""
    cpu = min(os.sched_getaffinity(0))
    with grpc_floor.EchoServer(threads=2, cpus=str(cpu)) as server:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(server.target))
        assert stub.Predict(predict_pb2.PredictRequest(), timeout=60) == (
            predict_pb2.PredictResponse())
        affinities = set()
        for tid in os.listdir(f"/proc/{server.proc.pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                affinities.add(tuple(os.sched_getaffinity(int(tid))))
    assert affinities == {(cpu,)}

