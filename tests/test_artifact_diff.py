"""benchmarks/artifact_diff.py: the order-independent, float-tolerant comparison that
benchmarks/beam_compare.py applies to two runners' artifacts, on hand-made inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from artifact_diff import (
    compare_arrays,
    compare_examples,
    compare_flat,
    flatten_proto,
)


def _example(user: str, rating: float, genres=("Drama",)) -> tf.train.Example:
    ex = tf.train.Example()
    ex.features.feature["user"].bytes_list.value.append(user.encode())
    ex.features.feature["rating"].float_list.value.append(rating)
    ex.features.feature["genres"].bytes_list.value.extend(g.encode() for g in genres)
    return ex


def _stats(features: list[tuple[str, float]]) -> statistics_pb2.DatasetFeatureStatisticsList:
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(num_examples=10)
    for name, mean in features:
        f = dataset.features.add()
        f.path.step.append(name)
        f.num_stats.mean = mean
    return stats


def test_statistics_are_keyed_by_feature_path_not_position():
    a = flatten_proto(_stats([("age", 30.0), ("year", 1990.0)]))
    b = flatten_proto(_stats([("year", 1990.0), ("age", 30.0)]))  # a runner's other order
    assert a["datasets[0].features[age].num_stats.mean"] == 30.0
    assert compare_flat(a, b)["equal"]


def test_float_differences_are_measured_against_the_tolerance():
    a = flatten_proto(_stats([("age", 30.0), ("year", 2000.0)]))
    b = flatten_proto(_stats([("age", 30.0), ("year", 2000.001)]))
    r = compare_flat(a, b, rel_tol=1e-7)
    assert not r["equal"] and not r["within_tolerance"]
    assert r["numbers_differing"] == 1
    assert r["max_abs_diff"] == pytest.approx(0.001, abs=1e-9)
    assert r["max_rel_diff"] == pytest.approx(0.001 / 2000.001, rel=1e-6)  # 5.0e-7
    assert r["worst"][0]["field"] == "datasets[0].features[year].num_stats.mean"
    assert compare_flat(a, b, rel_tol=1e-6)["within_tolerance"]


def test_a_missing_or_non_numeric_field_is_never_within_tolerance():
    assert not compare_flat({"x": 1.0}, {"x": 1.0, "y": 2.0}, rel_tol=1.0)["within_tolerance"]
    r = compare_flat({"s": "a"}, {"s": "b"}, rel_tol=1.0)
    assert r["non_numeric_differing"] == ["s"] and not r["within_tolerance"]


def test_examples_are_compared_as_multisets():
    a = [_example("u1", 4.0), _example("u2", 3.0), _example("u2", 3.0)]
    b = [_example("u2", 3.0), _example("u1", 4.0), _example("u2", 3.0)]  # reordered
    r = compare_examples([e.SerializeToString() for e in a], [e.SerializeToString() for e in b])
    assert r["equal_as_multisets"] and r["records_a"] == 3 and r["max_abs_diff"] == 0.0
    # The multiplicity counts: one u2 row fewer is not the same multiset.
    r = compare_examples([e.SerializeToString() for e in a],
                         [e.SerializeToString() for e in b[:2]])
    assert not r["equal_as_multisets"] and r["multiset_difference"] == 1


def test_float_only_differences_are_paired_and_measured():
    a = [_example("u1", 4.0), _example("u2", 3.0)]
    b = [_example("u2", 3.25), _example("u1", 4.0)]
    r = compare_examples([e.SerializeToString() for e in a], [e.SerializeToString() for e in b])
    assert not r["equal_as_multisets"] and r["multiset_difference"] == 2  # one row each side
    assert r["rows_differing_non_float"] == 0
    assert r["max_abs_diff"] == pytest.approx(0.25)
    b = [_example("u2", 3.0, genres=("Comedy",)), _example("u1", 4.0)]
    r = compare_examples([e.SerializeToString() for e in a], [e.SerializeToString() for e in b])
    assert r["rows_differing_non_float"] == 1


def test_arrays_equal_or_max_abs_diff():
    a = {"x": np.array([1.0, 2.0], np.float32), "ids": np.array([1, 2])}
    assert compare_arrays(a, dict(a))["equal"]
    r = compare_arrays(a, {"x": np.array([1.0, 2.5], np.float32), "ids": np.array([1, 3])})
    assert not r["equal"] and r["max_abs_diff"] == 0.5
    assert r["per_output"] == {"ids": "DIFFERENT", "x": 0.5}
    r = compare_arrays(a, {"x": np.array([1.0], np.float32)})
    assert not r["equal"] and r["only_in_a"] == ["ids"]
