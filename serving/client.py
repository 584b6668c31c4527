"""Client for the mtrec model over TF Serving's gRPC API.

Works against `tensorflow/serving` and the embedded `mtrec serve` alike: it
only uses PredictionService.Predict/GetModelMetadata and
ModelService.GetModelStatus. Each call has a deadline; UNAVAILABLE (server
starting, connection reset during a rollout) and the NOT_FOUND of a model with no
version loaded yet are retried with exponential backoff; anything else raises
`ServingError` at once because retrying a bad request cannot help.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict, TypeVar

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from mtrec.contracts import signatures as S
from mtrec.pseudonyms import pseudonymizer
from mtrec.serving import tensor_codec
from mtrec.serving.errors import NO_VERSION_YET, ServingError
from mtrec.serving.versions import MAX_VERSION

Id = str | int | bytes
# k travels as an int32: a larger one wrapped negative ("k must be a positive integer").
MAX_K = 2**31 - 1
# models/serving_ops.py's refusal of a k past the catalogue, ending in the catalogue's size:
# "... (k = 9, limit = 5)" from our server (signature.clean_tf_message), TF's assertion text
# "... [y (strided_slice:0) = ] [5]" from TF Serving.
_PAST_CATALOGUE = re.compile(
    re.escape(S.K_PAST_CATALOGUE) + r".*?(?:\[y \([^)]*\) = \]\s*\[(\d+)\]|limit = (\d+)\))",
    re.S)


def catalogue_size(message: str) -> int | None:
    """The catalogue size a refused top-k request names, or None for any other error."""
    match = _PAST_CATALOGUE.search(message)
    return int(match.group(1) or match.group(2)) if match else None


_T = TypeVar("_T")


def _retryable(code: grpc.StatusCode, details: str) -> bool:
    """A failed connection, or a server whose model is still loading (TF Serving's
    NOT_FOUND, with `mtrec serve`'s words for why); not a wrong name or request."""
    return code == grpc.StatusCode.UNAVAILABLE or (
        code == grpc.StatusCode.NOT_FOUND and NO_VERSION_YET in details)


def _id(value: Id) -> bytes:
    return tensor_codec.as_bytes(value)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RankedItem(TypedDict, total=False):
    """One item of an answer: score and rating always; relevance from `score` when the
    model has it; title where `mtrec query` adds it (describe_items)."""

    item_id: str
    title: str
    score: float
    rating: float
    relevance: float


class UserItems(TypedDict):
    """recommend's (ranked, seen items left out) and score's (in the given order) answer."""

    user_id: str
    items: list[RankedItem]


class GivenItems(TypedDict):
    """recommend_from_items' answer: the items given, and the ranked others."""

    given: list[str]
    items: list[RankedItem]


class GenreScore(TypedDict):
    genre: str
    score: float


class UserGenres(TypedDict):
    user_id: str
    genres: list[GenreScore]  # strongest first


def _ranked(out: Mapping[str, np.ndarray], row: int) -> list[RankedItem]:
    """One row of a top-k answer (recommend, recommend_from_items) as item dicts,
    without the excluded items.

    The signatures' outputs are always k wide (TF Serving's fixed shapes), so when
    k reaches past the items a user may get, the rest are the excluded ones (seen
    or given items) with the mask score S.EXCLUDED_SCORE, ranked last. They are no answer: the
    same threshold as the model's own re-rank (S.EXCLUDED_BELOW) drops them here.
    """
    return [
        {"item_id": _text(item), "score": float(score), "rating": float(rating)}
        for item, score, rating in zip(
            out[S.ITEM_IDS][row], out[S.SCORES][row], out[S.RATINGS][row], strict=True
        )
        if score > S.EXCLUDED_BELOW
    ]


class MtrecClient:
    """Typed calls for mtrec's signatures plus generic predict/metadata/status.

    `target` is "host:port". `timeout` is the per-attempt deadline in seconds;
    `retries` is how many extra attempts UNAVAILABLE gets. `pseudonymize_key`: the key
    of a run made with --pseudonymize-key-env, whose model knows users by pseudonym
    only; each user id is sent as its pseudonym (mtrec/pseudonyms.py), and answers
    name the id as given.
    """

    def __init__(
        self,
        target: str,
        model_name: str = S.MODEL_NAME,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.1,
        root_cert: str | bytes | None = None,
        client_cert: tuple[bytes, bytes] | None = None,
        max_receive_bytes: int = 64 * 1024 * 1024,
        version: int | None = None,
        pseudonymize_key: bytes | None = None,
    ) -> None:
        if version is not None and not 0 <= version <= MAX_VERSION:
            raise ValueError(f"version {version} is not a model version (0 to {MAX_VERSION})")
        if not timeout > 0:
            raise ValueError(f"timeout {timeout}: must be above 0 seconds")
        self.target = target
        pseudo = pseudonymizer(pseudonymize_key) if pseudonymize_key is not None else None
        self._user: Callable[[Id], bytes] = (
            _id if pseudo is None else lambda user: pseudo(_id(user)).encode())
        self.model_name = model_name
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.version = version
        options = [
            ("grpc.max_receive_message_length", max_receive_bytes),
            ("grpc.max_send_message_length", -1),
        ]
        if root_cert is not None or client_cert is not None:
            if isinstance(root_cert, str):
                with open(root_cert, "rb") as fh:
                    root_cert = fh.read()
            key, chain = client_cert if client_cert else (None, None)
            creds = grpc.ssl_channel_credentials(root_cert, key, chain)
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    # --------------------------------------------------------------- plumbing
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> MtrecClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _invoke(self, method: Callable[..., _T], request: Any, timeout: float | None) -> _T:
        deadline = self.timeout if timeout is None else timeout
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=deadline)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
                details = exc.details() if hasattr(exc, "details") else str(exc)
                if not _retryable(code, details) or attempt == self.retries:
                    raise ServingError(code, details or code.name) from None
                time.sleep(delay * (1.0 + random.random()))  # jitter spreads herds
                delay *= 2
        raise AssertionError("unreachable")

    def _spec(self, spec: Any, signature: str = "") -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        if signature:
            spec.signature_name = signature

    # ---------------------------------------------------------------- generic
    def predict_raw(
        self, request: predict_pb2.PredictRequest, timeout: float | None = None
    ) -> predict_pb2.PredictResponse:
        return self._invoke(self._predict.Predict, request, timeout)

    def classify_raw(
        self, request: classification_pb2.ClassificationRequest, timeout: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        return self._invoke(self._predict.Classify, request, timeout)

    def regress_raw(
        self, request: regression_pb2.RegressionRequest, timeout: float | None = None
    ) -> regression_pb2.RegressionResponse:
        return self._invoke(self._predict.Regress, request, timeout)

    def predict(
        self,
        signature: str,
        inputs: Mapping[str, Any],
        dtypes: Mapping[str, tf.DType] | None = None,
        output_filter: Sequence[str] = (),
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run any signature; inputs are array-likes, outputs numpy arrays.

        `dtypes` pins element types where Python's default would be wrong
        (ints default to int64; mtrec's `k` is int32).
        """
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature)
        dtypes = dtypes or {}
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tensor_codec.encode(value, dtypes.get(key)))
        request.output_filter.extend(output_filter)
        response = self.predict_raw(request, timeout)
        return {key: tensor_codec.decode(proto) for key, proto in response.outputs.items()}

    def metadata(self, timeout: float | None = None) -> dict[str, Any]:
        """Model spec and signature defs as a JSON-able dict (TF Serving's layout)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._invoke(self._predict.GetModelMetadata, request, timeout)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sig_map)
        return {
            "model_spec": json_format.MessageToDict(response.model_spec),
            "signature_def": json_format.MessageToDict(sig_map)["signatureDef"],
        }

    def status(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Per-version state: [{"version": 3, "state": "AVAILABLE", "error_code": 0, ...}]."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._invoke(self._models.GetModelStatus, request, timeout)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [
            {
                "version": int(s.version),
                "state": state_name(s.state),
                "error_code": int(s.status.error_code),
                "error_message": s.status.error_message,
            }
            for s in response.model_version_status
        ]

    def wait_until_available(self, timeout: float = 60.0) -> int:
        """Block until some version is AVAILABLE; returns it (used by tools and tests)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                for entry in self.status(timeout=2.0):
                    if entry["state"] == "AVAILABLE":
                        return entry["version"]
            except ServingError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{self.model_name} not available at {self.target}: {last}")

    # ------------------------------------------------------------ mtrec calls
    def _top_k(self, signature: str, inputs: dict[str, np.ndarray], k: int,
               timeout: float | None) -> dict[str, np.ndarray]:
        """predict with `k`, where a k past the catalogue asks for all of it: fewer than k
        are left, so all of them are the answer (README, "Serving"), not the model's
        refusal. A k below 1 is a ValueError here, not TF's assertion text."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a whole number from 1 up, got {k!r}")
        k = min(int(k), MAX_K)
        try:
            return self.predict(signature, {**inputs, S.K: np.int32(k)}, timeout=timeout)
        except ServingError as exc:
            size = catalogue_size(exc.message)
            if size is None or not 1 <= size < k:
                raise
            return self.predict(signature, {**inputs, S.K: np.int32(size)}, timeout=timeout)

    def recommend(self, user: Id, k: int = 10, timeout: float | None = None) -> UserItems:
        """Top-k unseen items for one user: {"user_id", "items": [{"item_id", "score",
        "rating"}]}; fewer than k when the user has fewer unseen items."""
        return self.recommend_many([user], k, timeout)[0]

    def recommend_many(
        self, users: Sequence[Id], k: int = 10, timeout: float | None = None
    ) -> list[UserItems]:
        if not len(users):
            return []  # nothing to ask (the server refuses an empty batch)
        out = self._top_k(S.RECOMMEND, {
            S.USER_ID: np.array([self._user(u) for u in users], dtype=object)}, k, timeout)
        return [{"user_id": _text(_id(user)), "items": _ranked(out, row)}
                for row, user in enumerate(users)]

    def recommend_from_items(
        self, items: Sequence[Id], k: int = 10, timeout: float | None = None
    ) -> GivenItems:
        """Top-k for a user known only by `items` (oldest first; none of them is
        returned, unknown ones are ignored): {"given", "items": [{"item_id", ...}]};
        fewer than k when fewer items are left."""
        out = self._top_k(S.RECOMMEND_FROM_ITEMS, {
            S.ITEM_IDS: np.array([[_id(i) for i in items]], dtype=object)}, k, timeout)
        return {"given": [_text(_id(i)) for i in items], "items": _ranked(out, 0)}

    def score(self, user: Id, items: Sequence[Id], timeout: float | None = None) -> UserItems:
        """Scores for given items: {"user_id", "items": [{"item_id", "score", "rating", ...}]}."""
        out = self.predict(
            S.SCORE,
            {
                S.USER_ID: np.array([self._user(user)], dtype=object),
                S.ITEM_IDS: np.array([[_id(i) for i in items]], dtype=object),
            },
            timeout=timeout,
        )
        rows: list[RankedItem] = []
        for j, item in enumerate(items):  # each output the model has (older ones lack some)
            row: RankedItem = {"item_id": _text(_id(item))}
            if S.SCORES in out:
                row["score"] = float(out[S.SCORES][0][j])
            if S.RATINGS in out:
                row["rating"] = float(out[S.RATINGS][0][j])
            if S.RELEVANCE in out:
                row["relevance"] = float(out[S.RELEVANCE][0][j])
            rows.append(row)
        return {"user_id": _text(_id(user)), "items": rows}

    def user_interest(self, user: Id, timeout: float | None = None) -> UserGenres:
        """Genre affinities, strongest first: {"user_id", "genres": [{"genre", "score"}]}."""
        out = self.predict(
            S.USER_INTEREST, {S.USER_ID: np.array([self._user(user)], dtype=object)},
            timeout=timeout
        )
        return {
            "user_id": _text(_id(user)),
            "genres": [
                {"genre": _text(g), "score": float(s)}
                for g, s in zip(out[S.GENRES][0], out[S.SCORES][0], strict=True)
            ],
        }

    def embed_user(self, user: Id, timeout: float | None = None) -> np.ndarray:
        out = self.predict(
            S.EMBED_USER, {S.USER_ID: np.array([self._user(user)], dtype=object)},
            timeout=timeout
        )
        return out[S.EMBEDDING][0]

    def embed_item(self, item: Id, timeout: float | None = None) -> np.ndarray:
        out = self.predict(
            S.EMBED_ITEM, {S.ITEM_ID: np.array([_id(item)], dtype=object)}, timeout=timeout
        )
        return out[S.EMBEDDING][0]

    def describe(self, items: Sequence[Id], timeout: float | None = None) -> dict[str, str]:
        """Each item's display title by id, "Title (Year)" ("" for an id the model does
        not know), so answers can be shown to people. A model pushed before the
        describe_items signature answers with a ServingError: callers treat it as no titles.
        """
        if not items:
            return {}
        out = self.predict(S.DESCRIBE_ITEMS,
                           {S.ITEM_IDS: np.array([[_id(i) for i in items]], dtype=object)},
                           timeout=timeout)
        return {_text(_id(i)): _text(t) for i, t in zip(items, out[S.TITLES][0], strict=True)}

    def unknown(self, kind: str, ids: Sequence[Id], timeout: float | None = None) -> list[str]:
        """Those of `ids` the model does not know (kind "user" or "item"), which it answers
        as its learned "unknown" one rather than with an error.

        An unknown id has no row and no stored features, so its embedding is that of an
        id no model holds; a catalogue item without training ratings still has its
        features and text, so it counts as known. One embed call for all the ids.
        """
        if kind not in ("user", "item"):
            raise ValueError(f"kind must be 'user' or 'item', got {kind!r}")
        signature, key, sent = ((S.EMBED_USER, S.USER_ID, self._user) if kind == "user"
                                else (S.EMBED_ITEM, S.ITEM_ID, _id))
        probe = [sent(i) for i in ids] + [S.NO_SUCH_ID]
        vectors = self.predict(signature, {key: np.array(probe, dtype=object)},
                               timeout=timeout)[S.EMBEDDING]
        return [_text(_id(i)) for i, v in zip(ids, vectors[:-1], strict=True)
                if np.allclose(v, vectors[-1], rtol=0, atol=1e-6)]
