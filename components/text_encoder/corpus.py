"""Reading the item catalogue and turning each item into one text string.

`item_text` (Python: the training corpus, and `mtrec add-items`' new items)
and `item_text_tf` (its TensorFlow twin, for a TF graph that builds the text
itself; mtrec's own graphs do not: the exported encoder takes finished text)
must agree byte for byte, otherwise a cold item's vector would not match a
catalogue item's. Both therefore use the same three steps with the same character classes:
join "title | genres | year | description" (year "" when unknown), collapse
ASCII whitespace runs to one space and trim, then Unicode-lowercase (Python's `str.lower` and
`tf.strings.lower(encoding="utf-8")` agree on every code point below U+2000,
final sigma included; tested).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types.artifact import Artifact

from mtrec.contracts import features
from mtrec.contracts.pipeline import CATALOG_SPLIT
from mtrec.data.artifact_io import read_files, split_files

FIELD_SEPARATOR = " | "
GENRE_SEPARATOR = " "
# RE2's \s is [\t\n\f\r ] while Python's also covers Unicode spaces; spell the
# class out so both engines collapse exactly the same characters.
_WS_CLASS = "[ \t\n\f\r\v]"
_WS_RUN = re.compile(_WS_CLASS + "+")
_WS_EDGES_TF = f"^{_WS_CLASS}+|{_WS_CLASS}+$"


def year_text(year: int) -> str:
    """"1995", or "" for an unknown (<= 0) year."""
    return str(year) if year > 0 else ""


def item_text(title: str, genres: Iterable[str], description: str, year: int = 0) -> str:
    """The text the encoder sees for one item: "title | genres | year | description".

    E.g. "toy story (1995) | animation comedy | 1995 |". Empty parts keep their
    separator so the layout is fixed (and trivially reproducible in TF); the
    trailing separator is then trimmed only of spaces. (`year` comes last in
    the arguments so that older three-argument calls keep their meaning.)
    """
    parts = [title, GENRE_SEPARATOR.join(genres), year_text(int(year)), description]
    raw = FIELD_SEPARATOR.join(parts)
    return _WS_RUN.sub(" ", raw).strip(" \t\n\f\r\v").lower()


def description_text(description: str) -> str:
    """What the encoder sees for an item's description alone (the cold-item map's second
    input block, models/cold_item_map.py): item_text's whitespace collapse and
    lower-casing, "" when there is none. The encoder's tokenizer lower-cases and splits
    on whitespace itself, so a client may send it the description as it is."""
    return _WS_RUN.sub(" ", description).strip(" \t\n\f\r\v").lower()


def item_text_tf(
    title: tf.Tensor,
    genres: tf.RaggedTensor | tf.SparseTensor | tf.Tensor,
    description: tf.Tensor,
    year: tf.Tensor | None = None,
) -> tf.Tensor:
    """Batched TF twin of `item_text`: string [B], genres [B, None], string [B], int [B] -> [B].

    `genres` may be ragged, sparse (as parsed from VarLen features) or dense
    padded with "" (extra spaces from padding are collapsed away).
    """
    if isinstance(genres, tf.SparseTensor):
        genres = tf.RaggedTensor.from_sparse(genres)
    joined_genres = tf.strings.reduce_join(genres, axis=-1, separator=GENRE_SEPARATOR)
    if year is None:
        year = tf.zeros_like(title, dtype=tf.int64)
    year = tf.cast(year, tf.int64)
    years = tf.where(year > 0, tf.strings.as_string(year), tf.zeros_like(title))
    raw = tf.strings.join(
        [title, joined_genres, years, description], separator=FIELD_SEPARATOR
    )
    text = tf.strings.regex_replace(raw, _WS_CLASS + "+", " ")
    text = tf.strings.regex_replace(text, _WS_EDGES_TF, "")
    return tf.strings.lower(text, encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class CatalogItem:
    """One catalogue row, decoded."""

    item_id: str
    title: str
    genres: tuple[str, ...]
    description: str
    year: int

    @property
    def text(self) -> str:
        return item_text(self.title, self.genres, self.description, self.year)

    @property
    def description_text(self) -> str:
        return description_text(self.description)


def _bytes_values(example: tf.train.Example, name: str) -> list[str]:
    feature = example.features.feature.get(name)
    if feature is None:
        return []
    return [v.decode("utf-8", errors="replace") for v in feature.bytes_list.value]


def _first(values: Sequence[str]) -> str:
    return values[0] if values else ""


def parse_catalog_example(serialized: bytes) -> CatalogItem:
    """Decode one serialized tf.Example; absent text features become ""."""
    example = tf.train.Example.FromString(serialized)
    year_feature = example.features.feature.get(features.YEAR)
    years = list(year_feature.int64_list.value) if year_feature is not None else []
    return CatalogItem(
        item_id=_first(_bytes_values(example, features.ITEM_ID)),
        title=_first(_bytes_values(example, features.TITLE)),
        genres=tuple(_bytes_values(example, features.GENRES)),
        description=_first(_bytes_values(example, features.DESCRIPTION)),
        year=int(years[0]) if years else 0,
    )


def catalog_files(artifacts: list[Artifact], split: str = CATALOG_SPLIT) -> list[str]:
    """The gzipped TFRecord files of the catalogue split of an Examples artifact."""
    try:
        split_uri = artifact_utils.get_split_uri(artifacts, split)
    except ValueError as err:
        found = [artifact_utils.decode_split_names(a.split_names) for a in artifacts]
        raise ValueError(
            f"item_catalog needs a split named {split!r}, found {found}; give ImportExampleGen "
            f"output_config SplitConfig(splits=[Split(name={split!r}, hash_buckets=1)])"
        ) from err
    return split_files(split_uri, "*.gz")


def read_catalog(files: Sequence[str]) -> list[CatalogItem]:
    """All items, sorted by item id, first occurrence wins on duplicate ids.

    Sorting makes item_ids.txt independent of ExampleGen's shard order.
    """
    items: dict[str, CatalogItem] = {}
    dataset = read_files(files)
    for serialized in dataset.as_numpy_iterator():
        item = parse_catalog_example(serialized)
        if not item.item_id:
            raise ValueError(f"catalogue example without {features.ITEM_ID!r}")
        items.setdefault(item.item_id, item)
    if not items:
        raise ValueError("the catalogue split is empty")
    return [items[key] for key in sorted(items)]
