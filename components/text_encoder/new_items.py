"""Text vectors for items added after training (`mtrec add-items`).

The pushed-alongside encoder SavedModel embeds the new items' text, with the
same item-text format (corpus.item_text) and the same centring as the
catalogue's vectors, and its description alone through the encoder's
`description` signature, as the executor encodes it, so an added item is indexed
exactly like a cold item.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.components.text_encoder.corpus import description_text
from mtrec.components.text_encoder.corpus import item_text as text_of
from mtrec.components.text_encoder.export import (
    DESCRIPTION_SIGNATURE,
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE,
    description_vectors,
)
from mtrec.contracts import features as F
from mtrec.models.item_text import ItemText, centre
from mtrec.models.reindex import genres_of


def extend_item_text(item_text: ItemText, items: pd.DataFrame) -> ItemText:
    """Encode the new items' text with the pushed-alongside encoder; same centring."""
    if item_text.encoder_dir is None:
        raise ValueError("the text encoder SavedModel is missing; cannot embed new items' text")
    import tensorflow_text  # noqa: F401  (the encoder's WordPiece ops)

    signatures = tf.saved_model.load(item_text.encoder_dir).signatures
    encoder = signatures[SIGNATURE]
    texts = [
        text_of(str(r.get(F.TITLE, "") or ""), genres_of(r), str(r.get(F.DESCRIPTION, "") or ""),
                int(r.get(F.YEAR, 0) or 0))
        for _, r in items.iterrows()
    ]
    raw = encoder(**{INPUT_NAME: tf.constant(texts)})[OUTPUT_NAME].numpy()
    ids = dict(item_text.ids)
    for item_id in items[F.ITEM_ID].astype(str):
        ids[item_id] = len(ids)
    descriptions = item_text.descriptions
    if descriptions is not None:  # the description alone, as the executor encodes it
        new = [description_text(str(r.get(F.DESCRIPTION, "") or "")) for _, r in items.iterrows()]
        describe = signatures[DESCRIPTION_SIGNATURE]
        vectors = description_vectors(
            lambda strings: describe(**{INPUT_NAME: tf.constant(strings)})[OUTPUT_NAME].numpy(),
            new, item_text.dim)
        descriptions = np.concatenate([descriptions, vectors])
    return ItemText(ids, np.concatenate([item_text.vectors, centre(raw, item_text.mean)]),
                    item_text.mean, item_text.encoder_dir, descriptions)
