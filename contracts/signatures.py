"""The exported SavedModel's signature names: what clients, TFMA and the evaluators call.

models/export.py exports one signature per name (a method of that name on
models/serving_module.py's ServingModule); the RetrievalEvaluator, the run
summary, the warmup requests, TFMA's model spec and the serving client call
them by these names. A client must not count on DESCRIBE_ITEMS: models pushed
before it have no such signature (`mtrec query` then shows ids alone).
"""

from __future__ import annotations

# The served model's name: TF Serving's model_spec.name, and the folder the local
# runner pushes versions into (<home>/serving_model/mtrec), whose name TF Serving's
# --model_base_path convention serves it under.
MODEL_NAME = "mtrec"

SERVING_DEFAULT = "serving_default"  # serialized tf.Examples -> rating, relevance, interest
TRANSFORM_FEATURES = "transform_features"  # TFMA's preprocessing function
RECOMMEND = "recommend"  # user_id, k -> the blended top-k, seen items excluded
RECOMMEND_FROM_ITEMS = "recommend_from_items"  # item_ids, k -> top-k for an anonymous bag
RETRIEVE = "retrieve"  # user_id, k -> top-k by similarity over the full catalogue
SCORE = "score"  # user_id, item_ids -> scores, ratings, relevance
USER_INTEREST = "user_interest"  # user_id -> genre affinities
EMBED_USER = "embed_user"
EMBED_ITEM = "embed_item"
EMBED_NEW_ITEM = "embed_new_item"  # a cold item's features (and text vector) -> embedding
DESCRIBE_ITEMS = "describe_items"  # item_ids -> titles, for people reading the answers

SIGNATURES = (
    SERVING_DEFAULT,
    EMBED_NEW_ITEM,
    TRANSFORM_FEATURES,
    RECOMMEND,
    RECOMMEND_FROM_ITEMS,
    RETRIEVE,
    SCORE,
    USER_INTEREST,
    EMBED_USER,
    EMBED_ITEM,
    DESCRIBE_ITEMS,
)

# Their tensors, by name: a PredictRequest's inputs and a PredictResponse's outputs
# (the ServingModule's TensorSpecs and returned dicts; clients and warmup requests).
EXAMPLES = "examples"  # serialized tf.Examples (serving_default, transform_features)
USER_ID, ITEM_ID = "user_id", "item_id"  # raw ids (features.USER_ID, ITEM_ID)
ITEM_IDS = "item_ids"  # [B, n] ids: score's and recommend_from_items' input; top-k output
K = "k"  # int32 scalar: the list length
TEXT_EMBEDDING = "text_embedding"  # embed_new_item: a new item's text vector
# embed_new_item: the encoder's vector of the item's description alone (ignored when the
# description is empty, or the catalogue had no descriptions: see models/cold_item_map.py)
DESCRIPTION_EMBEDDING = "description_embedding"
SCORES = "scores"  # the blend score (recommend, score), similarity (retrieve), affinity
RATINGS = "ratings"  # the served rating of each returned item
RELEVANCE = "relevance"  # P(like) of each scored item
GENRES = "genres"  # user_interest's names; embed_new_item's input (features.GENRES)
EMBEDDING = "embedding"  # embed_user, embed_item, embed_new_item
TITLES = "titles"  # describe_items: "Title (Year)" per id, "" for an unknown one

# The score of an item a list may not hold (the user's training items, the given
# items): finite, so a fixed-size top-k stays a plain tensor, and always ranked last.
# A list shorter than k is padded with such items; clients drop scores <= EXCLUDED_BELOW.
EXCLUDED_SCORE = -1e9
# Scores at or below this are no answer (the mask, after any blend): the model's
# re-rank, the summary and every client read them so.
EXCLUDED_BELOW = EXCLUDED_SCORE / 2

# The top-k signatures' refusal of a k past the catalogue (an INVALID_ARGUMENT whose
# message ends with the catalogue's size): MtrecClient recognises it and asks for
# the whole catalogue instead.
K_PAST_CATALOGUE = "k must not exceed the catalogue size"
# An id no catalogue or user vocabulary holds: its embedding is the learned "unknown"
# one, which MtrecClient.unknown and benchmarks/served_quality.py compare ids with.
NO_SUCH_ID = b"\x00mtrec-no-such-id"

# The re-rank of `recommend` and `recommend_from_items` reads max(MIN_CANDIDATES,
# CANDIDATES_PER_K * k) first-stage items a row, at most the catalogue
# (models/serving_module.py); the server budgets its requests' pairs by the same rule
# (serving/request_checks.py).
MIN_CANDIDATES, CANDIDATES_PER_K = 100, 4
