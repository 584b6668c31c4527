"""The single source of feature names, shapes, vocabulary and OOV sizes.

Everything that reads or writes examples (ingestion, Transform, the model, the
serving signatures, the schema) takes its names from here, so that a rename is
one edit.
"""

from __future__ import annotations

# ---------------------------------------------------------------- raw features
# Interaction examples (the ExampleGen input). One row = one rating event,
# denormalised with the user's and the item's attributes at that time.
USER_ID = "user_id"  # bytes
ITEM_ID = "item_id"  # bytes
RATING = "rating"  # float, the explicit-rating label
TIMESTAMP = "timestamp"  # int64, seconds since the epoch
AGE = "age"  # int64, 0 = unknown
GENDER = "gender"  # bytes, "unknown" when absent
OCCUPATION = "occupation"  # bytes, "unknown" when absent
TITLE = "title"  # bytes
GENRES = "genres"  # bytes list (variable length)
DESCRIPTION = "description"  # bytes, free text (plot, tags, ...)
YEAR = "year"  # int64, release year, 0 = unknown
HISTORY = "history"  # bytes list: the user's previous item ids, newest first

USER_FEATURES = (USER_ID, AGE, GENDER, OCCUPATION, HISTORY)
ITEM_FEATURES = (ITEM_ID, TITLE, GENRES, DESCRIPTION, YEAR)
CONTEXT_FEATURES = (TIMESTAMP,)
LABEL_FEATURES = (RATING,)
RAW_FEATURES = USER_FEATURES + ITEM_FEATURES + CONTEXT_FEATURES + LABEL_FEATURES
LIST_FEATURES = (GENRES, HISTORY)
INT_FEATURES = (TIMESTAMP, AGE, YEAR)
FLOAT_FEATURES = (RATING,)

UNKNOWN = "unknown"

# ------------------------------------------------------------------- sizes
HISTORY_LEN = 20  # items of history kept per interaction (newest first)
TITLE_LEN = 8  # title tokens kept
DESCRIPTION_LEN = 32  # description tokens kept
GENRE_BUCKETS = 32  # multi-hot width: GENRE_VOCAB_TOP_K known genres + OOV
GENRE_VOCAB_TOP_K = GENRE_BUCKETS - 1
TEXT_VOCAB_TOP_K = 20_000  # shared title/description token vocabulary
USER_OOV = 8  # hash buckets for users never seen in training
ITEM_OOV = 8  # hash buckets for items never seen in training
CATEGORY_OOV = 1  # gender / occupation / text tokens
AGE_BOUNDARIES = (18, 25, 35, 45, 50, 56)  # MovieLens-1M's age groups
LIKED_THRESHOLD = 4.0  # a rating at or above this is a "like"
MIN_RATING, MAX_RATING = 0.5, 5.0
# The curated schema's (pipeline/schema/schema.pbtxt) other bounds, which ingestion
# fits the values to (data/checks.fit_schema): a value past them stopped the run at the
# AnomalyGate. tests/test_attribute_ranges.py pins them to the schema file.
MAX_AGE = 120  # age's int_domain max; above it, unknown (0)
MAX_YEAR = 2100  # year's int_domain max; above it, unknown (0)
MAX_GENRES = 32  # genres' value_count max; an item keeps its first MAX_GENRES

# ------------------------------------------------------- vocabulary names
USER_VOCAB = "user_id"
ITEM_VOCAB = "item_id"
ITEM_FREQ_VOCAB = "item_id_freq"  # same tokens, with counts (logQ correction)
GENRE_VOCAB = "genres"
TEXT_VOCAB = "text_tokens"
GENDER_VOCAB = "gender"
OCCUPATION_VOCAB = "occupation"

# ------------------------------------------------------ transformed features
# Index features use 0 for padding; real ids start at 1 (vocab index + 1).
USER_IDX = "user_idx"  # int64 []
ITEM_IDX = "item_idx"  # int64 []
HISTORY_IDX = "history_idx"  # int64 [HISTORY_LEN], 0 = padding
AGE_BUCKET = "age_bucket"  # int64 [], 0 = unknown
GENDER_IDX = "gender_idx"  # int64 []
OCCUPATION_IDX = "occupation_idx"  # int64 []
GENRES_MULTI_HOT = "genres_multi_hot"  # float [GENRE_BUCKETS]
TITLE_TOKENS = "title_tokens"  # int64 [TITLE_LEN], 0 = padding
DESCRIPTION_TOKENS = "description_tokens"  # int64 [DESCRIPTION_LEN]
YEAR_Z = "year_z"  # float [], z-scored release year, 0 when unknown
YEAR_KNOWN = "year_known"  # float [] 1/0
TIME_Z = "time_z"  # float [], z-scored event time
ITEM_AGE_Z = "item_age_z"  # float [], years between release and event, z
TIMESTAMP_XF = "timestamp_raw"  # int64 [], passthrough for profile building
ITEM_ID_XF = "item_id_raw"  # bytes [], passthrough for catalogue building
# Not a Transform output: the TextEncoder's vector of an item (float [D]). The
# candidate tower looks it up by item_idx in training; serving passes it in
# for catalogue and cold items.
ITEM_TEXT_VECTOR = "item_text_vector"
USER_ID_XF = "user_id_raw"  # bytes [], passthrough
# Not a Transform output: every item the user rated in training, unordered
# (int64 ragged [None], item_idx). The model looks it up by user_idx from a
# table built in the Trainer's scan; `recommend_from_items` passes it in.
RATED_IDX = "rated_idx"
# labels
RATING_XF = "rating_label"  # float []
LIKED_XF = "liked_label"  # int64 [] 1 if rating >= LIKED_THRESHOLD

CANDIDATE_XF_FEATURES = (
    ITEM_IDX,
    GENRES_MULTI_HOT,
    TITLE_TOKENS,
    DESCRIPTION_TOKENS,
    YEAR_Z,
    YEAR_KNOWN,
)

# Model output names (also the serving_default outputs TFMA reads).
OUT_RATING = "rating"
OUT_RELEVANCE = "relevance"
OUT_INTEREST = "interest"


def display_title(title: str, year: int | None) -> str:
    """TITLE as a person reads it, with its YEAR: "Fly, The (1986)". The loaders strip the
    year from the title into its own feature (data/tables.split_title_year), which left
    remakes indistinguishable on screen; "" stays "", and a title already ending in its
    year, or with no year (0), is left as it is. One rule for the run summary, the report
    and the served describe_items."""
    if not title or not year or title.endswith(f"({year})"):
        return title
    return f"{title} ({year})"
