"""Shared set-up for the serving tests: which model, which server, what inputs.

Everything model-specific lives in `ModelProfile`, so the same tests run
against the synthetic fixture model or a real pushed model:

* default: a synthetic model (benchmarks/synthetic_model.py) and an in-process
  server on a free port;
* `MTREC_SERVING_MODEL_DIR=<pushed version dir>`: that model, served
  in-process (version-swap tests then use copies of it);
* `MTREC_SERVING_TARGET=host:port` (+ optionally MTREC_SERVING_MODEL_DIR for
  in-process comparisons, MTREC_SERVING_MAX_REQUEST_BYTES for the size-cap
  test): an external server (e.g. tensorflow/serving); tests that need to
  write version dirs are skipped.

`MTREC_SERVING_USERS=1,2,3` overrides the user ids the tests query.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import grpc
import numpy as np
import pytest
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.serving.errors import ServingError
from mtrec.serving.server import ServerConfig, ServingServer

# Test and benchmark support, kept out of the installed mtrec packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from synthetic_model import build_synthetic_model

TARGET = os.environ.get("MTREC_SERVING_TARGET")
MODEL_DIR = os.environ.get("MTREC_SERVING_MODEL_DIR")
EXTERNAL = TARGET is not None
MAX_REQUEST_BYTES = int(
    os.environ.get("MTREC_SERVING_MAX_REQUEST_BYTES", "0" if EXTERNAL else str(1 << 20))
)
MODEL_NAME = os.environ.get("MTREC_SERVING_MODEL_NAME", "mtrec")
# Not describe_items: the synthetic model, like a model pushed before it, has none
# (clients go on without titles: tests/test_serving_cli.py).
CONTRACT_SIGNATURES = (
    S.SERVING_DEFAULT,
    S.RECOMMEND,
    S.SCORE,
    S.USER_INTEREST,
    S.EMBED_USER,
    S.EMBED_ITEM,
)

_scratch = tempfile.mkdtemp(prefix="mtrec-serving-tests-")
atexit.register(shutil.rmtree, _scratch, True)
_models: dict[tuple[Any, ...], str] = {}


def synthetic_model(seed: int = 0, **kwargs: Any) -> str:
    """Path of a built synthetic model; built once per process per arguments."""
    key = (seed, *sorted(kwargs.items()))
    if key not in _models:
        path = os.path.join(_scratch, f"model-{len(_models)}")
        build_synthetic_model(path, seed=seed, **kwargs)
        _models[key] = path
    return _models[key]


def primary_model_dir() -> str | None:
    """The model the read-only tests compare against (None: external, no local copy)."""
    if MODEL_DIR:
        return MODEL_DIR
    if EXTERNAL:
        return None
    return synthetic_model(0, num_items=300, num_users=50, classify_regress=True)


def second_model_dir() -> str:
    """A different model to roll out as a new version."""
    return MODEL_DIR or synthetic_model(1, num_items=300, num_users=50)


def install_version(model_root: str, version: int, source: str, *, atomic: bool = True) -> str:
    """Put `source` at <model_root>/<version> the way the Pusher does (temp dir + rename)."""
    final = os.path.join(model_root, str(version))
    tmp = os.path.join(model_root, f".tmp-{version}") if atomic else final
    shutil.copytree(source, tmp, symlinks=True)
    if atomic:
        os.rename(tmp, final)
    return final


@dataclass
class ModelProfile:
    """Model-specific facts the tests rely on; change here to point at another model."""

    users: tuple[str, ...] = ("1", "2", "3")
    unknown_user: str = "no-such-user-\u00e9"
    unknown_item: str = "no-such-item-\u00e9"
    huge_k: int = 2**31 - 1  # beyond any catalogue
    extra: dict[str, Any] = field(default_factory=dict)

    def examples(self, users: list[str], items: list[str]) -> np.ndarray:
        """Serialized raw tf.Examples, the `serving_default` input."""
        out = []
        for user, item in zip(users, items, strict=True):
            feats = {
                F.USER_ID: _bytes([user]),
                F.ITEM_ID: _bytes([item]),
                F.TIMESTAMP: _ints([978_300_760]),
                F.AGE: _ints([25]),
                F.GENDER: _bytes(["M"]),
                F.OCCUPATION: _bytes(["12"]),
                F.TITLE: _bytes(["Toy Story (1995)"]),
                F.GENRES: _bytes(["Animation", "Comedy"]),
                F.DESCRIPTION: _bytes(["a cowboy doll is threatened by a new spaceman"]),
                F.YEAR: _ints([1995]),
                F.HISTORY: _bytes(items[:3]),
            }
            ex = tf.train.Example(features=tf.train.Features(feature=feats))
            out.append(ex.SerializeToString())
        return np.array(out, dtype=object)


def _bytes(values: list[str]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _ints(values: list[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def profile() -> ModelProfile:
    users = os.environ.get("MTREC_SERVING_USERS")
    return ModelProfile(users=tuple(users.split(","))) if users else ModelProfile()


class InProcessModel:
    """The same SavedModel called directly, as the reference for round trips."""

    def __init__(self, path: str) -> None:
        self._loaded = tf.saved_model.load(path)

    def __call__(self, signature: str, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        fn = self._loaded.signatures[signature]
        specs = fn.structured_input_signature[1]
        tensors = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
        return {k: v.numpy() for k, v in fn(**tensors).items()}


def assert_outputs_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key].shape == value.shape, key
        if value.dtype.kind in ("O", "S"):
            assert got[key].tolist() == value.tolist(), key
        else:
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


def new_base_dir() -> str:
    return tempfile.mkdtemp(prefix="base-", dir=_scratch)


def new_model_root(name: str = MODEL_NAME) -> str:
    """An empty folder of versions, `.../serving_model/<name>` like the Pusher's destination.

    This is what `--model-base-path` (TF Serving's model_base_path) points at.
    """
    root = os.path.join(new_base_dir(), "serving_model", name)
    os.makedirs(root)
    return root

def start_server(model_root: str, **overrides: Any) -> ServingServer:
    """An in-process server on `model_root`, polling fast; `overrides` set ServerConfig fields."""
    config = ServerConfig(
        model_base_path=model_root,
        model_name=MODEL_NAME,
        port=0,
        poll_seconds=0.1,
        max_request_bytes=MAX_REQUEST_BYTES or (1 << 20),
        threads=8,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return ServingServer(config).start()


def expect_error(
    call: Any, code: grpc.StatusCode, *fragments: str, alt: tuple = ()
) -> ServingError:
    """`call` fails with `code` (or, against an external server, an `alt` code)."""
    with pytest.raises(ServingError) as info:
        call()
    allowed = {code, *alt} if EXTERNAL else {code}
    assert info.value.code in allowed, info.value
    if not EXTERNAL:
        for fragment in fragments:
            assert fragment in info.value.message, info.value.message
    return info.value


def run_together(calls: Iterable[Callable[[], None]]) -> None:
    """Run each call on its own thread, all started before any is waited for (the
    concurrent requests the batching tests need merged)."""
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
