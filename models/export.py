"""Write the serving SavedModel (the graph: serving_module.py) and what ships beside it.

TF Serving loads the version folder; the text encoder, which needs TF Text's
ops, is copied next to the graph rather than into it, so the recommender loads
with TensorFlow alone (TFMA's Beam workers included).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import tensorflow as tf

from mtrec.contracts import artifacts as A
from mtrec.contracts.artifacts import EXTRA_ASSETS_DIR
from mtrec.contracts.signatures import SIGNATURES
from mtrec.data.artifact_io import link_tree
from mtrec.models.item_text import ItemText
from mtrec.models.keras_saving import without_layer_traces
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_module import ServingModule
from mtrec.models.serving_tables import ServingTables
from mtrec.models.sparse_item_item import TopKItemItem

if TYPE_CHECKING:
    import tensorflow_transform as tft

# Inside the SavedModel directory; TF Serving and tf.saved_model.load ignore it.
TEXT_ENCODER_DIR = os.path.join(EXTRA_ASSETS_DIR, "text_encoder")


def export_serving_model(
    model: MultiTaskModel,
    tft_output: tft.TFTransformOutput,
    tables: ServingTables,
    export_dir: str,
    item_text: ItemText | None = None,
    cache_users: bool = True,
) -> ServingModule:
    """Write the SavedModel with every signature in SIGNATURES.

    The text encoder (TF Text ops) is not inside this graph, so the recommender
    loads with TensorFlow alone, in TFMA's Beam workers too. It is copied next
    to it, to TEXT_ENCODER_DIR, and versioned with it: a cold item's text and its
    description alone go through that model, its outputs into
    `embed_new_item(text_embedding=..., description_embedding=...)`.
    `cache_users=False` leaves out the per-user tables (the reference the cache is
    tested against: same answers).
    """
    module = ServingModule(model, tft_output, tables, item_text, cache_users)
    signatures = {name: getattr(module, name) for name in SIGNATURES}
    with without_layer_traces():  # signatures only: Keras' layer traces double the time
        tf.saved_model.save(module, export_dir, signatures=signatures)
    if item_text is not None and item_text.encoder_dir:
        tf.io.gfile.makedirs(os.path.join(export_dir, EXTRA_ASSETS_DIR))
        link_tree(item_text.encoder_dir, os.path.join(export_dir, TEXT_ENCODER_DIR))
    return module



def served_regime(module: ServingModule) -> dict[str, str | bool | int]:
    """What the export chose by its size rules (models/first_stage.py, item_item.py,
    neighbour_rating.py, onboarding.py, answer_cache.py): the run summary's `serving:`
    line. A run on 14,993 items lost the item-kNN blend without a word."""
    item_item = module.item_item
    return {
        A.SERVED_FIRST_STAGE: "ivf" if module.ivf is not None else "exact",
        A.SERVED_ITEM_ITEM: ("off" if item_item is None and module.cold_columns is None
                             else "cold_only" if item_item is None
                             else "top_k" if isinstance(item_item, TopKItemItem) else "dense"),
        A.SERVED_RATING_KNN: module.model.neighbour_ratings is not None,
        A.SERVED_NEW_USER_PRIOR: ("onboarding" if module.onboarding is not None
                                  else "popularity" if hasattr(module, "log_popularity")
                                  else "off"),
        A.SERVED_CACHED_USERS: module.answers.last_row if module.answers is not None else 0,
    }
