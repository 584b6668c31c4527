"""What tests/test_export.py asks of its exports: the signatures' inputs, the calls it
replays (JSON-able, so a fresh process can replay them) and that fresh process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence

import tensorflow as tf

from tests.transform_support import row

EXPECTED_INPUTS = {
    "serving_default": {"examples": tf.string},
    "transform_features": {"examples": tf.string},
    "embed_new_item": {"item_id": tf.string, "title": tf.string, "genres": tf.string,
                       "description": tf.string, "year": tf.int64,
                       "text_embedding": tf.float32, "description_embedding": tf.float32},
    "recommend": {"user_id": tf.string, "k": tf.int32},
    "recommend_from_items": {"item_ids": tf.string, "k": tf.int32},
    "retrieve": {"user_id": tf.string, "k": tf.int32},
    "score": {"user_id": tf.string, "item_ids": tf.string},
    "user_interest": {"user_id": tf.string},
    "embed_user": {"user_id": tf.string},
    "embed_item": {"item_id": tf.string},
    "describe_items": {"item_ids": tf.string},
}


def catalogue_title(item_id: str) -> str:
    """The fixture's display title of a catalogue item."""
    return f"Film {item_id} (1999)"


def signature_calls(users: list[str], items: list[str], everyone: Sequence[str] = ()
                    ) -> list[tuple[str, dict]]:
    """(signature, kwargs) pairs; JSON-able so a subprocess can replay them. With
    `everyone` (every known user id): `recommend` for all of them at k within the
    answer cache's depth (25, models/answer_cache.py) and above it, and for unknown
    ids alone (each batch all known or all unknown: a mixed one is computed)."""
    cache = [("recommend", {"user_id": list(everyone), "k": k}) for k in (1, 10, 25, 26)]
    unknown = [("recommend", {"user_id": ["never-seen-user", "new-2"], "k": 10})]
    examples = {"examples": raw_examples(users, items[1:])}  # the last pair: both unknown
    new_items = {"item_id": items[:2] + ["brand-new"], "title": ["A", "B (1999)", "C"],
                 "genres": [["Drama", ""], ["Comedy", "Drama"], ["", ""]],
                 "description": ["", "a film", ""], "year": [1995, 0, 2001],
                 "text_embedding": [[]] * 3, "description_embedding": [[]] * 3}
    return [
        ("recommend", {"user_id": users, "k": 5}),
        ("recommend_from_items", {"item_ids": [items[:3] + [""], items[3:] + ["", ""]], "k": 5}),
        ("retrieve", {"user_id": users, "k": 5}),
        ("score", {"user_id": users, "item_ids": [items] * len(users)}),
        ("user_interest", {"user_id": users}),
        ("embed_user", {"user_id": users}),
        ("embed_item", {"item_id": items}),
        ("describe_items", {"item_ids": [items + [""], items[::-1] + [""]]}),  # unknown, ""
        ("serving_default", examples),
        ("transform_features", examples),
        ("embed_new_item", new_items),
    ] + (cache + unknown if everyone else [])


def raw_examples(users: list[str], items: list[str]) -> list[str]:
    """serving_default's input: raw tf.Examples of (user, item) pairs, base64 (JSON)."""
    out = []
    for user, item in zip(users, items, strict=True):
        raw = row(user, item, history=items[:2])
        feats = {name: _feature(values) for name, values in raw.items()}
        example = tf.train.Example(features=tf.train.Features(feature=feats))
        out.append(base64.b64encode(example.SerializeToString()).decode())
    return out


def _feature(values: list) -> tf.train.Feature:
    if isinstance(values[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if isinstance(values[0], float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def signature_inputs(name: str, kwargs: dict) -> dict[str, tf.Tensor]:
    """A call's JSON kwargs as the signature's input tensors (examples: base64-decoded)."""
    return {k: tf.constant([base64.b64decode(e) for e in v] if k == "examples" else v,
                           dtype=EXPECTED_INPUTS[name][k]) for k, v in kwargs.items()}


_REPLAY = textwrap.dedent(
    """
    import base64, json, sys
    import tensorflow as tf
    out = {}
    for model_dir in json.loads(sys.argv[1]):
        model = tf.saved_model.load(model_dir)
        out[model_dir] = []
        for name, kwargs in json.loads(sys.argv[2]):
            fn = model.signatures[name]
            args = {k: tf.constant([base64.b64decode(e) for e in v] if k == "examples" else v,
                                   dtype=fn.structured_input_signature[1][k].dtype)
                    for k, v in kwargs.items()}
            out[model_dir].append({
                k: (v.numpy().astype(str).tolist() if v.dtype == tf.string
                    else v.numpy().tolist()) for k, v in fn(**args).items()})
    assert "mtrec" not in sys.modules
    print("RESULT" + json.dumps(out))
    """
)


def replay(model_dirs: list[str], calls: list) -> dict[str, list[dict]]:
    """The calls' outputs (in order) per model, from one fresh TensorFlow-only process."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run([sys.executable, "-c", _REPLAY, json.dumps(model_dirs),
                           json.dumps(calls)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULT", 1)[1])
