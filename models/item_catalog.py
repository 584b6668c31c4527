"""The item catalogue as the serving index sees it: every item, rated or not.

Catalogue examples (features.ITEM_FEATURES only) go through the same Transform
graph as training data. TFT prunes the graph to the item inputs, so item ids
unseen in training land in OOV buckets, which the candidate tower folds into
its learned "unknown item" row: a cold item is indexed by its genres, title,
description, year and (with the TextEncoder) its text vector. Each item's raw
title and year also become its display title (models/item_titles.py), which
`describe_items` answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.data.artifact_io import read_split
from mtrec.models.item_titles import DISPLAY_TITLE, display_titles

if TYPE_CHECKING:
    import tensorflow_transform as tft

COLUMNS = (F.ITEM_ID_XF, *F.CANDIDATE_XF_FEATURES)


def read_catalog(
    catalog_dir: str, tft_output: tft.TFTransformOutput, batch_size: int = 4096
) -> dict[str, np.ndarray]:
    """Transformed candidate features of every catalogue item, in file order, de-duplicated,
    and (DISPLAY_TITLE) its display title."""
    raw_spec = tft_output.raw_feature_spec()
    spec = {k: raw_spec[k] for k in F.ITEM_FEATURES}
    layer = tft_output.transform_features_layer()
    dataset = (
        read_split(catalog_dir)
        .batch(batch_size)
        .map(lambda x: tf.io.parse_example(x, spec))
    )
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*COLUMNS, DISPLAY_TITLE)}
    for batch in dataset:
        xf = layer(batch)
        for key in COLUMNS:
            parts[key].append(xf[key].numpy())
        parts[DISPLAY_TITLE].append(display_titles(
            batch[F.TITLE].numpy().reshape(-1), batch[F.YEAR].numpy().reshape(-1)))
    columns = {k: np.concatenate(v) for k, v in parts.items()}
    _, first = np.unique(columns[F.ITEM_ID_XF], return_index=True)
    keep = np.sort(first)
    return {k: v[keep] for k, v in columns.items()}
