"""The serving SavedModel: raw features in, the Transform graph inside.

TF Serving runs no Python of ours, so every signature is a TF graph over raw
inputs: the Transform layer turns ids and features into indices, the lookup
tables built in training (catalogue, profiles, seen items) fill in what a
request does not carry, and the towers and heads do the rest.

Final recommendation score (`recommend`), over the top retrieval candidates:
    score = w_retrieval * stage1(user, item)
          + w_relevance * P(like | user, item)          (relevance head)
          + w_rating    * (rating - 0.5) / 4.5          (served rating, in [0, 1])
    stage1 = similarity(query, item)                    (dot product or cosine)
           + w_item_item * item-item score              (models/item_item.py; 0 = off;
                                                         top-K rows: sparse_item_item.py)
    (no item-item term served: + cold_item_term_weight * a cold item's own
     similarity deviation, item_item.cold_item_term)
with the weights from ModelConfig.blend and item_item_(cold_)weight; the served rating
(also `score`, `serving_default`) blends the rating head with an item-kNN table
(MultiTaskModel.served_rating, models/neighbour_rating.py). An item without
training ratings has the tower's unknown-id vector plus a text map's correction
(models/cold_item_map.py, ModelConfig.cold_item_map_weight). stage1 alone picks
max(100, 4k) candidates; relevance and rating re-rank them. `retrieve` stays
plain similarity, so an index over embed_user / embed_item ranks like it.
Known users read per-user tables built here once (query, item-item term, seen
mask: models/serving_ops.py) and pair heads split per item (models/pair_split.py):
recommend's summed op time on ML-100K, three alternating runs: 1,124-2,251 -> 500-736 us
a call (benchmarks/graph_ops.py; serving.md).
From ModelConfig.ivf_min_items items an IVF index (models/ivf.py) picks stage 1.
Signatures of a user known by given items: models/given_items.py; of items:
models/item_signatures.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S
from mtrec.models import serving_specs as spec
from mtrec.models.answer_cache import build_answer_cache, cache_depth
from mtrec.models.cold_item_map import catalogue_vectors
from mtrec.models.config import RATING, RELEVANCE
from mtrec.models.first_stage import first_stage_tables
from mtrec.models.given_items import GivenItems
from mtrec.models.item_item import cold_item_term, item_item_term, known_rows
from mtrec.models.item_text import ItemText
from mtrec.models.item_titles import title_table
from mtrec.models.light_users import PopularItems, light_user_table, routed
from mtrec.models.model import MultiTaskModel
from mtrec.models.onboarding import onboarding_term
from mtrec.models.pair_split import SplitPairHeads, splittable
from mtrec.models.serving_ops import (
    LIKE,
    NEG,
    as_variable,
    blend_score,
    checked_size,
    exclude,
    fits,
    pair_scores,
    per_user_rows,
    position_table,
    profile_inputs,
    top_positions,
    trained_year_range,
    unknown_item_vector,
    within_years,
)
from mtrec.models.serving_tables import (
    ServingTables,
    genre_vocabulary,
    user_row_table,
    user_rows,
)
from mtrec.models.sparse_item_item import bag_scores

if TYPE_CHECKING:
    from collections.abc import Callable


class ServingModule(GivenItems, tf.Module):
    """Holds the model, the Transform layer and the lookup tables."""

    def __init__(
        self,
        model: MultiTaskModel,
        tft_output: tft.TFTransformOutput,
        tables: ServingTables,
        item_text: ItemText | None = None,
        cache_users: bool = True,
    ) -> None:
        super().__init__(name="mtrec")
        self.model = model
        self.tft_layer = tft_output.transform_features_layer()
        raw_spec = tft_output.raw_feature_spec()
        self._raw_spec = raw_spec
        self._serving_spec = {k: v for k, v in raw_spec.items() if k not in F.LABEL_FEATURES}
        sizes = model.sizes
        self._known_items = sizes.known_items
        config = model.config
        self._blend = {k: float(v) for k, v in config.blend}
        self._num_candidates = S.MIN_CANDIDATES

        catalog_idx = tables.item_features[F.ITEM_IDX]
        known = known_rows(catalog_idx, sizes.known_items)
        # Items without training ratings (cold catalogue items, add-items' new ones,
        # embed_new_item's) keep their year_z within the trained range (within_years).
        self._year_range = trained_year_range(tables.item_features, known)
        features = dict(tables.item_features)
        features[F.YEAR_Z] = np.where(known, features[F.YEAR_Z], within_years(
            features[F.YEAR_Z], features[F.YEAR_KNOWN], self._year_range).numpy())
        catalog_inputs = {k: tf.constant(v) for k, v in features.items()}
        self._text_dim = item_text.dim if item_text else 0
        map_inputs = None
        if item_text:
            catalog_inputs[F.ITEM_TEXT_VECTOR] = tf.constant(item_text.rows_for(tables.item_ids))
            self.text_mean = as_variable(item_text.mean, "text_mean")
            map_inputs = item_text.map_rows_for(tables.item_ids)
        probability = model.item_sampling_prob.numpy()[catalog_idx]  # P(item), catalogue order
        # Cold items' vectors corrected from their text and description vectors
        # (models/cold_item_map.py).
        item_vectors, cold_map = catalogue_vectors(
            model, catalog_inputs, known, probability, map_inputs)
        self.cold_map_coef = self.cold_map_centre = None
        self._map_descriptions = bool(item_text and item_text.has_descriptions)
        if cold_map is not None:  # embed_new_item corrects a new item the same way
            self.cold_map_coef = as_variable(cold_map.coef, "cold_map_coef")
            self.cold_map_centre = as_variable(cold_map.centre, "cold_map_centre")
        self.catalog_ids = as_variable(tables.item_ids.astype(bytes), "catalog_ids")
        self.catalog_idx = as_variable(catalog_idx, "catalog_idx")
        self.item_vectors = as_variable(item_vectors, "item_vectors")
        self.item_retrieval_vectors = as_variable(
            model.retrieval_vector(tf.constant(item_vectors)).numpy(), "item_retrieval_vectors"
        )
        self.item_table = position_table(tables.item_ids)
        self.item_titles = title_table(tables.item_titles)  # describe_items
        self.unknown_item_vector = as_variable(unknown_item_vector(model), "unknown_item")
        self.profiles = {k: as_variable(v, f"profile_{k}") for k, v in tables.profiles.items()}
        self.seen_splits = as_variable(tables.seen_splits, "seen_splits")
        self.seen_positions = as_variable(tables.seen_positions, "seen_positions")
        self._cold_term_weight = config.cold_item_term_weight
        # item_item (+ item_item_rated, item_item_column_weights, rated_splits,
        # rated_idx), cold_columns, ivf.
        for name, value in first_stage_tables(
                model, tables, self.item_retrieval_vectors.numpy()).items():
            setattr(self, name, value)
        # stage1 = similarity + a term: the item-item one or, without it, the cold rule's.
        self._has_term = self.item_item is not None or self.cold_columns is not None
        # recommend_from_items' prior: the onboarding term, else log P(item).
        self.onboarding = onboarding_term(tables, catalog_idx, config)
        self._prior_weight = (config.cold_popularity_weight if self.onboarding is None
                              else config.onboarding_weight)
        if self.onboarding is None and self._prior_weight:
            self.log_popularity = as_variable(np.log(probability), "log_popularity")
        # recommend: known users with few ratings are served from those items, users
        # with none (unknown ids) like recommend_from_items with none: by popularity.
        self.light_users = light_user_table(tables, catalog_idx, config)
        self.popular = PopularItems(probability, tables.item_ids)
        self.nothing_query = as_variable(  # the query of a user known by nothing
            self._given_query(tf.fill([1, 1], tf.constant(-1, tf.int64)))[0].numpy(),
            "nothing_query")
        self.user_queries = self.user_item_item = self.user_seen = self.user_rows = None
        self.pair_split = self.answers = None
        if cache_users:
            self.user_rows = user_row_table(tft_output)
            self._cache_users(sizes.users)
            if splittable(model.pair_heads):
                self.pair_split = SplitPairHeads(model.pair_heads, item_vectors)
            self.answers = build_answer_cache(  # last: it runs recommend (answer_cache.py)
                self._recommend_rows, self._item_positions, sizes.known_users,
                cache_depth(tables.num_items, self._num_candidates),
                config.answer_cache_max_entries)
        genres = genre_vocabulary(tft_output)
        self._num_genres = len(genres)
        self.genre_names = tf.constant([g for g in genres], dtype=tf.string)

    def _cache_users(self, users: int) -> None:
        """Per-user tables (models/serving_ops.py): what depends on the user alone,
        computed here once instead of on every request."""
        if not fits(users, self.item_vectors.shape[1]):
            return
        self.user_queries = as_variable(per_user_rows(users, lambda idx: self.model.query_embedding(
            profile_inputs(self.profiles, idx))), "user_queries")
        if self.item_item is not None and fits(users, self.item_vectors.shape[0] + 1):
            self.user_item_item = as_variable(per_user_rows(users, lambda idx: self._user_term(idx)(
                self._similarity(tf.gather(self.user_queries, idx)))), "user_item_item")
        n = self.item_vectors.shape[0]
        if fits(users, n):  # seen items as a [users, n] mask
            mask = np.zeros((users, n), bool)
            rows = np.repeat(np.arange(users), np.diff(self.seen_splits.numpy()))
            mask[rows, self.seen_positions.numpy()] = True
            self.user_seen = as_variable(mask, "user_seen")

    # ----------------------------------------------------------------- helpers
    def _user_idx(self, user_id: tf.Tensor) -> tf.Tensor:
        if self.user_rows is not None:  # one lookup instead of the Transform graph
            return user_rows(self.user_rows, user_id)
        return self.tft_layer({F.USER_ID: tf.reshape(user_id, [-1, 1])})[F.USER_IDX]

    def _query(self, user_id: tf.Tensor | None, idx: tf.Tensor | None = None
               ) -> tuple[tf.Tensor, tf.Tensor]:
        idx = self._user_idx(user_id) if idx is None else idx
        if self.user_queries is not None:
            return tf.gather(self.user_queries, idx), idx
        return self.model.query_embedding(profile_inputs(self.profiles, idx)), idx

    def _similarity(self, query: tf.Tensor) -> tf.Tensor:
        """[B, N]: retrieval similarity of the query to every catalogue item."""
        return tf.matmul(
            self.model.retrieval_vector(query), self.item_retrieval_vectors, transpose_b=True
        )

    def _rated_bag(self, user_idx: tf.Tensor) -> tf.RaggedTensor:
        rated = tf.RaggedTensor.from_row_splits(self.rated_idx, self.rated_splits)
        return tf.gather(rated, user_idx)

    def _item_item_term(self, similarity: tf.Tensor, bag: tf.RaggedTensor) -> tf.Tensor:
        """[B, N + 1]: w_item_item * the item-item term of each row's bag (item_idx)
        for every catalogue item and (last column) an item outside the catalogue
        (models/item_item.item_item_term: items without training ratings included)."""
        if self.item_item is None:
            return self._cold_term(similarity)
        scores = bag_scores(self.item_item, bag)
        return self.item_item_column_weights * item_item_term(similarity, scores,
                                                              self.item_item_rated)

    def _check_k(self, k: tf.Tensor) -> tf.Tensor:
        return checked_size(k, tf.shape(self.catalog_ids, out_type=tf.int32)[0])

    def _seen(self, user_idx: tf.Tensor) -> tf.RaggedTensor:
        seen = tf.RaggedTensor.from_row_splits(self.seen_positions, self.seen_splits)
        return tf.gather(seen, user_idx)

    def _exclude_seen(self, scores: tf.Tensor, user_idx: tf.Tensor) -> tf.Tensor:
        if self.user_seen is not None:  # a gathered mask row: 0.11 ms less than the scatter
            return tf.where(tf.gather(self.user_seen, user_idx), NEG, scores)
        return exclude(scores, self._seen(user_idx))

    def _user_term(self, user_idx: tf.Tensor) -> Callable[[tf.Tensor], tf.Tensor]:
        """similarity -> the item-item term [B, N + 1] of these user rows' rated bags:
        the export's per-user table when there is one, else computed now."""
        if self.item_item is None:
            return self._cold_term
        if self.user_item_item is not None:
            return lambda _: tf.gather(self.user_item_item, user_idx)
        return lambda similarity: self._item_item_term(similarity, self._rated_bag(user_idx))

    def _stage1(self, query: tf.Tensor, term: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
        """[B, N]: similarity plus the item-item term(similarity) (when on)."""
        similarity = self._similarity(query)
        if not self._has_term:
            return similarity
        return similarity + term(similarity)[:, :-1]

    def _cold_term(self, similarity: tf.Tensor) -> tf.Tensor:
        """[B, N + 1]: the weighted cold_item_term, 0 for an item outside the catalogue."""
        term = cold_item_term(similarity, self.cold_columns)
        return tf.pad(self._cold_term_weight * term, [[0, 0], [0, 1]])

    def _blended(self, stage1: tf.Tensor, pair: dict[str, tf.Tensor]) -> tf.Tensor:
        return blend_score(self._blend, stage1, pair[RELEVANCE], pair[RATING])

    def _candidates(self, n: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
        """How many first-stage items the re-rank reads: max(100, 4k), at most n."""
        return tf.minimum(n, tf.maximum(self._num_candidates, S.CANDIDATES_PER_K * k))

    def _rerank(self, query: tf.Tensor, user_idx: tf.Tensor, values: tf.Tensor, at: tf.Tensor,
                k: tf.Tensor) -> dict[str, tf.Tensor]:
        """The blend over each row's first-stage items (scores `values` at catalogue
        positions `at`, [B, c]); excluded items (score NEG) stay last."""
        vectors, item_idx = tf.gather(self.item_vectors, at), tf.gather(self.catalog_idx, at)
        # The same heads, their first layer split when it can be (models/pair_split.py).
        heads = self.pair_split(query, vectors, at) if self.pair_split is not None else None
        pair = pair_scores(self.model, query, user_idx, vectors, item_idx, heads)
        # Excluded items keep their huge negative score through the blend.
        blend = tf.where(values <= S.EXCLUDED_BELOW, values, self._blended(values, pair))
        best = tf.math.top_k(blend, k)
        positions = tf.gather(at, best.indices, batch_dims=1)
        return {
            S.ITEM_IDS: tf.gather(self.catalog_ids, positions),
            S.SCORES: best.values,
            S.RATINGS: tf.gather(pair[RATING], best.indices, batch_dims=1),
        }

    # -------------------------------------------------------------- signatures
    @spec.signature(input_signature=[spec.EXAMPLES])
    def serving_default(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        xf = self.tft_layer(tf.io.parse_example(examples, self._serving_spec))
        return self.model(xf)

    @spec.signature(input_signature=[spec.EXAMPLES])
    def transform_features(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.tft_layer(tf.io.parse_example(examples, self._raw_spec))

    @spec.signature(input_signature=[spec.USER_ID, spec.K])
    def recommend(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """Top-k unseen items: retrieve candidates, then re-rank with the blend (known
        users, k <= 25: the export's answers, models/answer_cache.py). A user with at
        most light_user_items training ratings gets recommend_from_items' answer."""
        n, user_idx = self._check_k(k), self._user_idx(user_id)
        if self.answers is None:
            return self._recommend_rows(user_idx, k, n)
        return self.answers.answer_or(user_idx, k, n, self.catalog_ids,
                                      lambda: self._recommend_rows(user_idx, k, n))

    def _recommend_rows(self, user_idx: tf.Tensor, k: tf.Tensor, n: tf.Tensor | None = None
                        ) -> dict:
        """Known users' lists; light users' from their few items, and unknown ids' as
        from none (models/light_users.py)."""
        n = tf.size(self.catalog_ids) if n is None else n
        selected, given = self.light_users(user_idx)
        return routed(self._trained_rows(user_idx, k, n), selected,
                      lambda: self._own_ratings(self._from_positions(given, k, n), user_idx))

    def _own_ratings(self, answer: dict, user_idx: tf.Tensor) -> dict:
        """`answer` with each item's rating as `score` gives it to these users: a light
        user's list is ranked from their few items (recommend_from_items' query and the
        unknown user's row), but the rating shown is their own (up to 0.35 apart)."""
        positions = self._item_positions(answer[S.ITEM_IDS])
        vectors, item_idx = self._item_vectors_at(positions)
        query, _ = self._query(None, user_idx)
        return {**answer, S.RATINGS: pair_scores(self.model, query, user_idx, vectors,
                                                 item_idx)[RATING]}

    def _trained_rows(self, user_idx: tf.Tensor, k: tf.Tensor, n: tf.Tensor) -> dict:
        c = self._candidates(n, k)
        query, _ = self._query(None, user_idx)

        def exact() -> tuple[tf.Tensor, tf.Tensor]:
            stage1 = self._stage1(query, self._user_term(user_idx))
            return top_positions(self._exclude_seen(stage1, user_idx), c)

        if self.ivf is None:
            return self._rerank(query, user_idx, *exact(), k)
        vector = self.model.retrieval_vector(query)
        values, at = self.ivf.top(vector, self.item_retrieval_vectors, self._seen(user_idx), c,
                                  exact)
        return self._rerank(query, user_idx, values, at, k)

    @spec.signature(input_signature=[spec.USER_ID, spec.K])
    def retrieve(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """Plain retrieval over the whole catalogue, seen items included (FactorizedTopK)."""
        k = tf.minimum(k, self._check_k(k))  # the same k, after the checks
        query, _ = self._query(user_id)
        top = tf.math.top_k(self._similarity(query), k)
        return {S.ITEM_IDS: tf.gather(self.catalog_ids, top.indices), S.SCORES: top.values}

    @spec.signature(input_signature=[spec.USER_ID, spec.ITEM_IDS])
    def score(self, user_id: tf.Tensor, item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        """Blend score, P(like) and predicted rating for each listed item."""
        query, user_idx = self._query(user_id)
        positions = self._item_positions(item_ids)
        vectors, item_idx = self._item_vectors_at(positions)
        pair = pair_scores(self.model, query, user_idx, vectors, item_idx)
        # recommend's first stage: similarity plus the item-item term.
        similarity = tf.reduce_sum(self.model.retrieval_vector(query)[:, tf.newaxis, :]
                                   * self.model.retrieval_vector(vectors), axis=-1)
        if self._has_term:
            term = self._user_term(user_idx)(self._similarity(query))
            outside = tf.cast(tf.shape(term)[1] - 1, positions.dtype)
            similarity += tf.gather(term, tf.where(positions >= 0, positions, outside),
                                    batch_dims=1)
        return {S.SCORES: self._blended(similarity, pair), S.RELEVANCE: pair[LIKE],
                S.RATINGS: pair[RATING]}

    @spec.signature(input_signature=[spec.USER_ID])
    def user_interest(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """Genres ranked by P(user engages with and likes the genre)."""
        query, _ = self._query(user_id)
        probs = tf.sigmoid(self.model.interest_logits(query))[:, : self._num_genres]
        top = tf.math.top_k(probs, self._num_genres)
        return {S.GENRES: tf.gather(self.genre_names, top.indices), S.SCORES: top.values}

    @spec.signature(input_signature=[spec.USER_ID])
    def embed_user(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        query, _ = self._query(user_id)
        return {S.EMBEDDING: self.model.retrieval_vector(query)}
