"""Put new items into a served catalogue without retraining the towers.

The trained weights (saved by the Trainer next to its TensorBoard logs) are
loaded into a freshly built model; the catalogue is re-read with the new
items added, each embedded from its features and text exactly like a cold
item; and a new SavedModel is exported. User embeddings, ratings and every
known item's vector are unchanged: only the index grows.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pandas as pd
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.data.artifact_io import COMPRESSION, read_split
from mtrec.models.export import export_serving_model
from mtrec.models.item_catalog import read_catalog
from mtrec.models.item_text import ItemText
from mtrec.models.serving_tables import build_serving_tables
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model, write_warmup
from mtrec.models.weights_file import load_config, restore_weights

if TYPE_CHECKING:
    import tensorflow_transform as tft


def item_example(item: pd.Series) -> bytes:
    """One catalogue tf.Example (features.ITEM_FEATURES) from an items-table row."""

    def text(value: object) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))

    genres = [g.encode() for g in genres_of(item)]
    year = int(item.get(F.YEAR, 0) or 0)
    feature = {
        F.ITEM_ID: text(item[F.ITEM_ID]),
        F.TITLE: text(item.get(F.TITLE, "") or ""),
        F.DESCRIPTION: text(item.get(F.DESCRIPTION, "") or ""),
        F.GENRES: tf.train.Feature(bytes_list=tf.train.BytesList(value=genres)),
        F.YEAR: tf.train.Feature(int64_list=tf.train.Int64List(value=[year])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def catalog_item_ids(catalog_dir: str) -> set[str]:
    """The raw item ids of a catalogue split folder."""
    spec = {F.ITEM_ID: tf.io.FixedLenFeature([], tf.string)}
    ids: set[str] = set()
    for batch in read_split(catalog_dir).batch(8192):
        ids.update(i.decode() for i in tf.io.parse_example(batch, spec)[F.ITEM_ID].numpy())
    return ids


def genres_of(row: pd.Series) -> list[str]:
    """An items-table row's genres: a "|"-joined string or a list."""
    genres = row.get(F.GENRES, "")
    return genres.split("|") if isinstance(genres, str) and genres else list(genres or [])


def reindex(
    *,
    weights_dir: str,
    tft_output: tft.TFTransformOutput,
    scan_ds: tf.data.Dataset,
    catalog_dir: str,
    new_items: pd.DataFrame,
    out_catalog_dir: str,
    export_dir: str,
    item_text: ItemText | None = None,
) -> int:
    """Export a model whose catalogue is the old one plus `new_items`; returns its size.

    `item_text` must already hold the new items' vectors
    (components/text_encoder/new_items.py: extend_item_text). An id the old
    catalogue holds is a ValueError: its new row would replace the trained
    item's features, and so its vector.
    """
    known = sorted(set(new_items[F.ITEM_ID].astype(str)) & catalog_item_ids(catalog_dir))
    if known:
        raise ValueError(
            f"{len(known)} item id(s) already in the catalogue the model was trained on "
            f"({', '.join(known[:5])}{', ...' if len(known) > 5 else ''}): add-items adds "
            "new items only; changing a known item takes a new `mtrec run`")
    tf.io.gfile.makedirs(out_catalog_dir)
    for name in tf.io.gfile.listdir(catalog_dir):
        tf.io.gfile.copy(os.path.join(catalog_dir, name), os.path.join(out_catalog_dir, name), True)
    options = tf.io.TFRecordOptions(compression_type=COMPRESSION)
    with tf.io.TFRecordWriter(os.path.join(out_catalog_dir, "added.tfrecord.gz"), options) as w:
        for _, item in new_items.iterrows():
            w.write(item_example(item))

    config = load_config(weights_dir)
    sizes = VocabSizes.from_transform_output(tft_output)
    tables = build_serving_tables(scan_ds, sizes, read_catalog(out_catalog_dir, tft_output))
    model = build_model(sizes, config, tft_output, tables, item_text)
    restore_weights(model, weights_dir)
    export_serving_model(model, tft_output, tables, export_dir, item_text)
    write_warmup(export_dir, tables)  # as the Trainer's export: no cold first requests
    return tables.num_items
