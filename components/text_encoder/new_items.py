"""Text vectors for items added after training (`mtrec add-items`).

The pushed-alongside encoder SavedModel embeds the new items' text, with the
same item-text format (corpus.item_text) and the same centring as the
catalogue's vectors, so an added item is indexed exactly like a cold item.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.components.text_encoder.corpus import item_text as text_of
from mtrec.components.text_encoder.export import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from mtrec.contracts import features as F
from mtrec.models.item_text import ItemText, centre
from mtrec.models.reindex import genres_of


def extend_item_text(item_text: ItemText, items: pd.DataFrame) -> ItemText:
    """Encode the new items' text with the pushed-alongside encoder; same centring."""
    if item_text.encoder_dir is None:
        raise ValueError("the text encoder SavedModel is missing; cannot embed new items' text")
    import tensorflow_text  # noqa: F401  (the encoder's WordPiece ops)

    encoder = tf.saved_model.load(item_text.encoder_dir).signatures[SIGNATURE]
    texts = [
        text_of(str(r.get(F.TITLE, "") or ""), genres_of(r), str(r.get(F.DESCRIPTION, "") or ""),
                int(r.get(F.YEAR, 0) or 0))
        for _, r in items.iterrows()
    ]
    raw = encoder(**{INPUT_NAME: tf.constant(texts)})[OUTPUT_NAME].numpy()
    ids = dict(item_text.ids)
    rows = [item_text.vectors]
    for item_id, vector in zip(items[F.ITEM_ID].astype(str), centre(raw, item_text.mean),
                               strict=True):
        ids[item_id] = len(ids)
        rows.append(vector[None, :])
    return ItemText(ids, np.concatenate(rows), item_text.mean, item_text.encoder_dir)
