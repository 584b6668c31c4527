"""Reading the item catalogue and turning each item into one text string.

`item_text` is the one item-text format: the training corpus and `mtrec
add-items`' new items both go through it, so a new item's vector matches a
catalogue item's. It joins "title | genres | year | description" (year "" when
unknown), collapses ASCII whitespace runs to one space and trims, then
lower-cases. The exported encoder takes finished text: no graph rebuilds it
(a TensorFlow twin, item_text_tf, had no caller and was removed on 2026-12-07).
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
# ASCII whitespace only (Python's \s also covers Unicode spaces): what a client that
# builds the text in another language reproduces most easily.
_WS_CLASS = "[ \t\n\f\r\v]"
_WS_RUN = re.compile(_WS_CLASS + "+")


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
