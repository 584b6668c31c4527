"""ServingModule's item-side signatures: embeddings and display titles of items.

ServingModule (models/serving_module.py) holds the user-side signatures
(recommend, retrieve, score, user_interest, embed_user; recommend_from_items:
models/given_items.py) and builds every table; these read only the catalogue
tables and the candidate tower. The names below are declared so that mypy checks their use here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models import serving_specs as spec
from mtrec.models.cold_item_map import corrected
from mtrec.models.item_item import known_rows
from mtrec.models.serving_ops import (
    given_description,
    given_text,
    new_item_inputs,
    vectors_at,
    within_years,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mtrec.models.model import MultiTaskModel


class ItemSignatures:
    """A mixin of ServingModule (a tf.Module): it sets every table named here."""

    model: MultiTaskModel
    tft_layer: Callable[[dict], dict]
    item_table: tf.lookup.StaticHashTable
    item_titles: tf.lookup.StaticHashTable
    item_vectors: tf.Variable
    unknown_item_vector: tf.Variable
    catalog_idx: tf.Variable
    text_mean: tf.Variable
    cold_map_coef: tf.Variable | None
    cold_map_centre: tf.Variable | None
    _year_range: tuple[float, float] | None
    _text_dim: int
    _known_items: int
    _map_descriptions: bool

    def _item_positions(self, item_ids: tf.Tensor) -> tf.Tensor:
        return self.item_table.lookup(item_ids)

    def _item_vectors_at(self, positions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return vectors_at(self.item_vectors, self.unknown_item_vector, self.catalog_idx,
                          positions)

    @spec.signature(input_signature=spec.NEW_ITEM)
    def embed_new_item(self, item_id: tf.Tensor, title: tf.Tensor, genres: tf.Tensor,
                       description: tf.Tensor, year: tf.Tensor, text_embedding: tf.Tensor,
                       description_embedding: tf.Tensor) -> dict[str, tf.Tensor]:
        """Candidate embedding of an item from its features and text alone (cold start)."""
        inputs = new_item_inputs(self.tft_layer, item_id, title, genres, description, year)
        inputs[F.YEAR_Z] = within_years(inputs[F.YEAR_Z], inputs[F.YEAR_KNOWN], self._year_range)
        if self._text_dim:
            inputs[F.ITEM_TEXT_VECTOR] = given_text(text_embedding, self.text_mean)
        vectors = self.model.candidate_embedding(inputs)
        if self.cold_map_coef is not None:
            cold = ~known_rows(inputs[F.ITEM_IDX], self._known_items)
            map_inputs = inputs[F.ITEM_TEXT_VECTOR]
            if self._map_descriptions:  # ItemText.map_rows_for's second block
                map_inputs = tf.concat(
                    [map_inputs, given_description(description_embedding, description)], -1)
            vectors = corrected(vectors, map_inputs, cold, self.cold_map_coef,
                                self.cold_map_centre, self.model.config.cold_item_map_weight)
        return {S.EMBEDDING: self.model.retrieval_vector(vectors)}

    @spec.signature(input_signature=[spec.ITEM_ID])
    def embed_item(self, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        vectors, _ = self._item_vectors_at(self._item_positions(item_id))
        return {S.EMBEDDING: self.model.retrieval_vector(vectors)}

    @spec.signature(input_signature=[spec.ITEM_IDS])
    def describe_items(self, item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        """Display titles ("" unknown), so answers' ids can be shown to people."""
        return {S.TITLES: self.item_titles.lookup(item_ids)}
