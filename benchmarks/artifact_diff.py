"""Order-independent, float-tolerant comparison of two pipeline runs' artifacts.

Used by benchmarks/beam_compare.py to check that a Beam runner changes nothing
but the order and sharding of the records. Three shapes of output:

- protos (statistics, anomalies, schemas): flattened into "path -> scalar",
  repeated messages keyed by their feature path or name (not their position,
  which a runner is free to change), then compared field by field;
- tf.Examples (ExampleGen's and Transform's outputs): compared as multisets of
  their canonical (deterministic) serialisation, and when those differ, row by
  row after a canonical sort, with the largest float difference;
- arrays (a transform graph's outputs on one batch): equal, or max abs diff.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

import numpy as np
import tensorflow as tf
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

Scalar = float | int | str | bytes | bool
WORST = 5  # how many of the largest differences a report lists


def _label(msg: Message, index: int) -> str:
    """A repeated message's key: its feature path or name when it has one, else its index."""
    fields = msg.DESCRIPTOR.fields_by_name
    if "path" in fields and msg.HasField("path") and list(msg.path.step):
        return ".".join(msg.path.step)
    if "name" in fields and fields["name"].type == FieldDescriptor.TYPE_STRING and msg.name:
        return msg.name
    return str(index)


def flatten_proto(msg: Message, prefix: str = "") -> dict[str, Scalar]:
    """Every set scalar field of `msg` as {"a.b[key].c": value}."""
    out: dict[str, Scalar] = {}
    for field, value in msg.ListFields():
        path = f"{prefix}.{field.name}" if prefix else field.name
        is_message = field.type == FieldDescriptor.TYPE_MESSAGE
        if field.label == FieldDescriptor.LABEL_REPEATED:
            if is_message and field.message_type.GetOptions().map_entry:
                for key in value:
                    item = value[key]
                    sub = f"{path}[{key}]"
                    out.update(flatten_proto(item, sub) if isinstance(item, Message)
                               else {sub: item})
            elif is_message:
                for i, item in enumerate(value):
                    out.update(flatten_proto(item, f"{path}[{_label(item, i)}]"))
            else:
                out.update({f"{path}[{i}]": v for i, v in enumerate(value)})
        elif is_message:
            out.update(flatten_proto(value, path))
        else:
            out[path] = value
    return out


def _is_number(v: Any) -> TypeGuard[int | float]:
    """An int or float (numpy's included, which convert alike), not a bool."""
    return isinstance(v, int | float | np.number) and not isinstance(v, bool)


def compare_flat(
    a: Mapping[str, Scalar], b: Mapping[str, Scalar], rel_tol: float = 1e-6
) -> dict[str, Any]:
    """Field-by-field comparison of two flattened protos (or any flat mappings).

    A number counts as within tolerance when |a - b| <= rel_tol * max(|a|, |b|, 1).
    "equal" is exact equality of everything; "within_tolerance" allows that.
    """
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    diffs: list[tuple[float, str, Scalar, Scalar]] = []
    mismatched: list[str] = []
    for key in sorted(set(a) & set(b)):
        x, y = a[key], b[key]
        if x == y or (_is_number(x) and _is_number(y) and math.isnan(x) and math.isnan(y)):
            continue
        if _is_number(x) and _is_number(y):
            diffs.append((abs(float(x) - float(y)), key, x, y))
        else:
            mismatched.append(key)
    max_abs = max((d[0] for d in diffs), default=0.0)
    max_rel = max((d[0] / max(abs(float(d[2])), abs(float(d[3])), 1.0) for d in diffs),
                  default=0.0)
    return {
        "fields": len(set(a) | set(b)),
        "equal": not (only_a or only_b or diffs or mismatched),
        "within_tolerance": not (only_a or only_b or mismatched) and max_rel <= rel_tol,
        "rel_tol": rel_tol,
        "numbers_differing": len(diffs),
        "max_abs_diff": max_abs,
        "max_rel_diff": max_rel,
        "worst": [{"field": k, "a": float(x), "b": float(y)}
                  for _, k, x, y in sorted(diffs, reverse=True)[:WORST]],
        "non_numeric_differing": mismatched[:WORST],
        "only_in_a": only_a[:WORST],
        "only_in_b": only_b[:WORST],
    }


def canonical(record: bytes) -> bytes:
    """A tf.Example's deterministic serialisation (map order fixed)."""
    example = tf.train.Example.FromString(record)
    return example.SerializeToString(deterministic=True)


def example_row(record: bytes) -> tuple[tuple, dict[str, list[float]]]:
    """(sort key of the non-float features, {float feature: values}) of one tf.Example."""
    features = tf.train.Example.FromString(record).features.feature
    key, floats = [], {}
    for name in sorted(features):
        kind = features[name].WhichOneof("kind")
        values = list(getattr(features[name], kind).value) if kind else []
        if kind == "float_list":
            floats[name] = values
        else:
            key.append((name, tuple(values)))
    return tuple(key), floats


def compare_examples(a: Iterable[bytes], b: Iterable[bytes]) -> dict[str, Any]:
    """Two sets of tf.Examples as multisets; float differences when they are not equal.

    When the canonical multisets differ, rows are grouped by their non-float
    features (ids, strings, ints): rows without a partner of the same group on
    the other side are counted, and within a group rows are paired in order of
    their rounded floats, reporting the largest float difference.
    """
    a, b = list(a), list(b)
    ca, cb = Counter(map(canonical, a)), Counter(map(canonical, b))
    result: dict[str, Any] = {"records_a": len(a), "records_b": len(b),
                              "equal_as_multisets": ca == cb,
                              "multiset_difference": sum(((ca - cb) + (cb - ca)).values())}
    if ca == cb:
        return {**result, "max_abs_diff": 0.0, "rows_differing_non_float": 0}

    def groups(records: list[bytes]) -> dict[tuple, list[dict[str, list[float]]]]:
        out: dict[tuple, list[dict[str, list[float]]]] = {}
        for key, floats in map(example_row, records):
            out.setdefault(key, []).append(floats)
        for rows in out.values():
            rows.sort(key=lambda f: tuple((k, tuple(round(v, 4) for v in vs))
                                          for k, vs in sorted(f.items())))
        return out

    ga, gb = groups(a), groups(b)
    unmatched_a = sum(max(0, len(rows) - len(gb.get(k, []))) for k, rows in ga.items())
    unmatched_b = sum(max(0, len(rows) - len(ga.get(k, []))) for k, rows in gb.items())
    max_abs = 0.0
    for key in set(ga) & set(gb):
        for fa, fb in zip(ga[key], gb[key], strict=False):
            for name in set(fa) & set(fb):
                if fa[name] and len(fa[name]) == len(fb[name]):
                    diff = np.max(np.abs(np.subtract(fa[name], fb[name], dtype=np.float64)))
                    max_abs = max(max_abs, float(diff))
    return {**result, "max_abs_diff": max_abs,
            "rows_differing_non_float": max(unmatched_a, unmatched_b)}


def compare_arrays(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Named arrays: per name, equal (shape, dtype, values) or the max abs difference."""
    out: dict[str, Any] = {"names": len(set(a) | set(b)), "only_in_a": sorted(set(a) - set(b)),
                           "only_in_b": sorted(set(b) - set(a)), "per_output": {}}
    worst = 0.0
    equal = not (out["only_in_a"] or out["only_in_b"])
    for name in sorted(set(a) & set(b)):
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape or x.dtype != y.dtype:
            out["per_output"][name] = f"shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}"
            equal = False
        elif np.issubdtype(x.dtype, np.floating):
            diff = float(np.max(np.abs(x - y), initial=0.0))
            out["per_output"][name] = diff
            worst = max(worst, diff)
            equal = equal and diff == 0.0
        else:
            same = bool(np.array_equal(x, y))
            out["per_output"][name] = "equal" if same else "DIFFERENT"
            equal = equal and same
    return {**out, "equal": equal, "max_abs_diff": worst}
