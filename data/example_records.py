"""A few fields read back from written examples: the run summary's and the report's
example user and item titles, with one reader for both (they were two)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TypedDict

import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.data.artifact_io import read_files


class CatalogueEntry(TypedDict):
    title: str  # as shown: the title and its year (features.display_title)
    genres: list[str]


def records(files: Sequence[str]) -> Iterator[Mapping[str, tf.train.Feature]]:
    """Each example's features, in file order."""
    for record in read_files(files):
        yield tf.train.Example.FromString(record.numpy()).features.feature


def text(feature: tf.train.Feature) -> str:
    """The feature's first bytes value, decoded ('' when it has none)."""
    values = feature.bytes_list.value
    return values[0].decode() if values else ""


def first_int(feature: tf.train.Feature) -> int | None:
    values = feature.int64_list.value
    return values[0] if values else None


def first_users(files: Sequence[str], n: int) -> list[str]:
    """The first `n` distinct users of the examples, in file order."""
    users: list[str] = []
    for feature in records(files):
        user = text(feature[F.USER_ID])
        if user not in users:
            users.append(user)
        if len(users) == n:
            break
    return users


def catalogue(files: Sequence[str]) -> dict[str, CatalogueEntry]:
    """item_id -> its shown title and genres, for every item of the catalogue split."""
    return {text(f[F.ITEM_ID]): {
        "title": F.display_title(text(f[F.TITLE]), first_int(f[F.YEAR])),
        "genres": [g.decode() for g in f[F.GENRES].bytes_list.value],
    } for f in records(files)}
