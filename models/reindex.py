"""Put new items into a served catalogue without retraining the towers.

The trained weights (saved by the Trainer next to its TensorBoard logs) are
loaded into a freshly built model; the catalogue is re-read with the new
items added, each embedded from its features and text exactly like a cold
item; and a new SavedModel is exported. User embeddings, ratings and every
known item's vector are unchanged: only the index grows.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.models import features as F
from mtrec.models.catalog import build_serving_tables
from mtrec.models.export import export_serving_model
from mtrec.models.item_catalog import read_catalog
from mtrec.models.item_text import ItemText, centre
from mtrec.models.model import ModelConfig
from mtrec.models.towers import VocabSizes
from mtrec.models.trainer import build_model


def load_config(weights_dir: str) -> ModelConfig:
    with tf.io.gfile.GFile(os.path.join(weights_dir, "config.json")) as f:
        values = json.load(f)
    for key in ("loss_weights", "blend"):
        values[key] = tuple(tuple(pair) for pair in values[key])
    return ModelConfig.from_dict(values)


def item_example(item: pd.Series) -> bytes:
    """One catalogue tf.Example (features.ITEM_FEATURES) from an items-table row."""

    def text(value) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))

    genres = [g.encode() for g in _genres(item)]
    year = int(item.get(F.YEAR, 0) or 0)
    feature = {
        F.ITEM_ID: text(item[F.ITEM_ID]),
        F.TITLE: text(item.get(F.TITLE, "") or ""),
        F.DESCRIPTION: text(item.get(F.DESCRIPTION, "") or ""),
        F.GENRES: tf.train.Feature(bytes_list=tf.train.BytesList(value=genres)),
        F.YEAR: tf.train.Feature(int64_list=tf.train.Int64List(value=[year])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def extend_item_text(item_text: ItemText, items: pd.DataFrame) -> ItemText:
    """Encode the new items' text with the pushed-alongside encoder; same centring."""
    if item_text.encoder_dir is None:
        raise ValueError("the text encoder SavedModel is missing; cannot embed new items' text")
    import tensorflow_text  # noqa: F401  (the encoder's WordPiece ops)

    from mtrec.components.text_encoder.corpus import item_text as text_of

    encoder = tf.saved_model.load(item_text.encoder_dir).signatures["serving_default"]
    texts = [
        text_of(
            str(r.get(F.TITLE, "") or ""),
            _genres(r),
            str(r.get(F.DESCRIPTION, "") or ""),
            int(r.get(F.YEAR, 0) or 0),
        )
        for _, r in items.iterrows()
    ]
    raw = encoder(text=tf.constant(texts))["embedding"].numpy()
    ids = dict(item_text.ids)
    rows = [item_text.vectors]
    for item_id, vector in zip(items[F.ITEM_ID].astype(str), centre(raw, item_text.mean),
                               strict=True):
        ids[item_id] = len(ids)
        rows.append(vector[None, :])
    return ItemText(ids, np.concatenate(rows), item_text.mean, item_text.encoder_dir)


def _genres(row: pd.Series) -> list[str]:
    genres = row.get("genres", "")
    return genres.split("|") if isinstance(genres, str) and genres else list(genres or [])


def reindex(
    *,
    weights_dir: str,
    tft_output,
    scan_ds: tf.data.Dataset,
    catalog_dir: str,
    new_items: pd.DataFrame,
    out_catalog_dir: str,
    export_dir: str,
    item_text: ItemText | None = None,
) -> int:
    """Export a model whose catalogue is the old one plus `new_items`; returns its size."""
    tf.io.gfile.makedirs(out_catalog_dir)
    for name in tf.io.gfile.listdir(catalog_dir):
        tf.io.gfile.copy(os.path.join(catalog_dir, name), os.path.join(out_catalog_dir, name), True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(out_catalog_dir, "added.tfrecord.gz"), options) as w:
        for _, item in new_items.iterrows():
            w.write(item_example(item))
    if item_text is not None:
        item_text = extend_item_text(item_text, new_items)

    config = load_config(weights_dir)
    sizes = VocabSizes.from_transform_output(tft_output)
    tables = build_serving_tables(scan_ds, sizes, read_catalog(out_catalog_dir, tft_output))
    model = build_model(sizes, config, tft_output, tables, item_text)
    model.load_weights(os.path.join(weights_dir, "model")).expect_partial()
    export_serving_model(model, tft_output, tables, export_dir, item_text)
    return tables.num_items
