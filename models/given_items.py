"""ServingModule's `recommend_from_items`: users known only by the items given now.

A new user, or a known user's fresh interactions, get recommendations without
retraining. `recommend` routes here too: known users with at most
light_user_items training ratings are served from those items, and unknown ids as
users known by nothing (models/light_users.py). ServingModule
(models/serving_module.py) builds the tables and the shared first stage and
re-rank; the names below are declared so that mypy checks their use here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models import serving_specs as spec
from mtrec.models.config import RATING
from mtrec.models.item_item import known_rows, scaled_to
from mtrec.models.item_signatures import ItemSignatures
from mtrec.models.light_users import PopularItems, either
from mtrec.models.serving_ops import exclude, given_items_inputs, pair_scores, top_positions

if TYPE_CHECKING:
    from collections.abc import Callable

    from mtrec.models.onboarding import OnboardingTerm


class GivenItems(ItemSignatures):
    """A mixin of ServingModule (a tf.Module): it sets every table named here."""

    profiles: dict[str, tf.Variable]
    catalog_ids: tf.Variable
    onboarding: OnboardingTerm | None
    log_popularity: tf.Variable
    popular: PopularItems
    nothing_query: tf.Variable
    _prior_weight: float

    if TYPE_CHECKING:  # ServingModule's shared first stage and re-rank
        def _check_k(self, k: tf.Tensor) -> tf.Tensor: ...

        def _stage1(self, query: tf.Tensor, term: Callable[[tf.Tensor], tf.Tensor]
                    ) -> tf.Tensor: ...

        def _item_item_term(self, similarity: tf.Tensor, bag: tf.RaggedTensor
                            ) -> tf.Tensor: ...

        def _candidates(self, n: tf.Tensor, k: tf.Tensor) -> tf.Tensor: ...

        def _rerank(self, query: tf.Tensor, user_idx: tf.Tensor, values: tf.Tensor,
                    at: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]: ...

    @spec.signature(input_signature=[spec.ITEM_IDS, spec.K])
    def recommend_from_items(self, item_ids: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """Top-k for a user known only by the items given now (oldest first), none of
        them returned: a new user, or fresh interactions, without retraining.

        The query is an unknown user's (id row 0, no demographics) with these items
        as its history and rated-item bag; the item-item term reads the same bag,
        and a prior is added: what users who started with these items rated next
        (models/onboarding.py), or, where that is not served, log popularity.
        Items outside the catalogue, or never rated in training, are ignored.
        """
        return self._from_positions(self._item_positions(item_ids), k, self._check_k(k))

    def _given_query(self, positions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The query, user rows and rated bag of users known by `positions` [B, G]."""
        inputs, bag = given_items_inputs(self.profiles, self.catalog_idx, positions,
                                         self._known_items, self.model.rated_values is not None)
        return self.model.query_embedding(inputs), inputs[F.USER_IDX], bag

    def _from_positions(self, positions: tf.Tensor, k: tf.Tensor, n: tf.Tensor) -> dict:
        """recommend_from_items for catalogue `positions` [B, G] (-1: none).

        A row is known by nothing when none of its items has training ratings: items
        outside the catalogue (-1) and catalogue items never rated (added later, or
        nobody rated them; item_idx above known_items) are both dropped from the
        query's inputs (serving_ops.given_items_inputs), so such a row gets the
        answer for no items at all -- the most popular -- not the unknown user's
        own list."""
        idx = tf.gather(self.catalog_idx, tf.maximum(positions, 0))
        nothing = ~tf.reduce_any((positions >= 0) & known_rows(idx, self._known_items), axis=1)

        def ranked() -> dict:
            query, user_idx, bag = self._given_query(positions)
            stage1 = self._stage1(query, lambda s: self._item_item_term(s, bag))
            if self._prior_weight:  # on stage1's per-request spread (ModelConfig)
                prior = (self.onboarding(positions) if self.onboarding is not None
                         else tf.broadcast_to(self.log_popularity, tf.shape(stage1)))
                stage1 += self._prior_weight * scaled_to(stage1, prior,
                                                         tf.ones_like(stage1, tf.bool))
            stage1 = exclude(stage1, tf.ragged.boolean_mask(positions, positions >= 0))
            return self._rerank(query, user_idx, *top_positions(stage1, self._candidates(n, k)),
                                k)

        return either(nothing, ranked, lambda: self._popular(tf.shape(positions)[0], k))

    def _popular(self, batch: tf.Tensor, k: tf.Tensor) -> dict:
        """`batch` users known by nothing: the k most popular items, rated for such a
        user's query, computed at export (above the model's own answers for such users:
        models/light_users.py)."""
        at, scores = self.popular(batch, k)
        query = tf.tile(self.nothing_query, tf.stack([batch, 1]))
        pair = pair_scores(self.model, query, tf.zeros([batch], tf.int64),
                           tf.gather(self.item_vectors, at), tf.gather(self.catalog_idx, at))
        return {S.ITEM_IDS: tf.gather(self.catalog_ids, at), S.SCORES: scores,
                S.RATINGS: pair[RATING]}
