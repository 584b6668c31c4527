"""What recommend's first stage reads besides the similarity, chosen at export.

One of, by catalogue size and ModelConfig (models/serving_module.py's docstring
has the formula):
- the item-item term: EASE's dense B up to item_item.MAX_ITEMS known items
  (item_item.dense_item_item), or its top-K rows above (item_item_top_k;
  models/sparse_item_item.py), never where the IVF index picks the candidates;
- no term: the rule for items without training ratings alone, at
  cold_item_term_weight (item_item.cold_item_term);
- from ivf_min_items catalogue items, with neither: an IVF index (models/ivf.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtrec.contracts import features as F
from mtrec.models.config import ModelConfig
from mtrec.models.item_item import Session, dense_item_item, known_rows
from mtrec.models.ivf import IvfFirstStage, fit_ivf
from mtrec.models.model import MultiTaskModel
from mtrec.models.serving_ops import as_variable
from mtrec.models.serving_tables import ServingTables
from mtrec.models.sparse_item_item import served_item_item


def first_stage_tables(model: MultiTaskModel, tables: ServingTables,
                       retrieval_vectors: np.ndarray) -> dict[str, Any]:
    """ServingModule attributes: item_item (a Variable, a TopKItemItem or None) with
    item_item_rated, item_item_column_weights, rated_splits and rated_idx when it is
    set; cold_columns; ivf."""
    config, sizes = model.config, model.sizes
    catalog_idx = tables.item_features[F.ITEM_IDX]
    by_index = 0 < config.ivf_min_items <= tables.num_items
    out: dict[str, Any] = {"item_item": None, "cold_columns": None, "ivf": None}
    if config.item_item_weight and (dense_item_item(sizes.known_items, tables.num_items) or (
            config.item_item_top_k and not by_index)):
        weights, rated = served_item_item(
            tables.rated_splits, tables.rated_idx, sizes.items, sizes.known_items,
            catalog_idx, config.item_item_l2, config.item_item_top_k,
            config.item_item_max_fit_items, _session(config, tables))
        # Columns in catalogue order, so a bag's row sum scores the catalogue.
        out["item_item"] = weights if not isinstance(weights, np.ndarray) else as_variable(
            weights, "item_item")
        # Which items have item-item evidence (item_item.item_item_term), and each
        # column's weight: item_item_weight, or item_item_cold_weight without evidence.
        out["item_item_rated"] = as_variable(rated, "item_item_rated")
        out["item_item_column_weights"] = as_variable(np.where(
            rated, config.item_item_weight, config.item_item_cold_weight).astype(np.float32),
            "item_item_column_weights")
        # The model's own copy when its query tower reads the bags (saved once).
        if model.rated_values is not None:
            out["rated_splits"], out["rated_idx"] = model.rated_splits, model.rated_values
        else:
            out["rated_splits"] = as_variable(tables.rated_splits, "rated_splits")
            out["rated_idx"] = as_variable(tables.rated_idx, "rated_idx")
    elif config.cold_item_term_weight and not by_index:
        # No item-item term (above the dense limits by default): item_item_term's rule for
        # items without training ratings alone, at ModelConfig.cold_item_term_weight.
        out["cold_columns"] = as_variable(~known_rows(catalog_idx, sizes.known_items),
                                          "cold_columns")
    elif by_index:  # large catalogues: recommend's first stage by index
        out["ivf"] = IvfFirstStage(fit_ivf(retrieval_vectors), config.ivf_nprobe)
    return out


def _session(config: ModelConfig, tables: ServingTables) -> Session | None:
    """The item-item term's session Gram settings, when on and the times are known."""
    if not config.item_item_session_mix or tables.rated_times is None:
        return None
    return Session(tables.rated_times, config.item_item_session_tau,
                   config.item_item_session_mix)
