"""File names inside artifacts, shared by the writer and every reader."""

from __future__ import annotations

# ------------------------------------------------------- a run's home (`mtrec run`)
MLMD_FILE = "metadata.sqlite"  # ML Metadata: what each run did, its artifacts
EXAMPLES_DIR = "examples"  # ingestion's examples/<digest>/ folders (mtrec/ingest.py)
# `mtrec add-items`' record of each served model's added items (mtrec/add_items.py), read
# again by a later add-items call and by the summary of a run that replaces that model.
ADDED_ITEMS_DIR = "added_items"
ADDED_ITEMS_RECORD = "model-{model_id}.csv"  # model_id: the Trainer model's MLMD id

# ------------------------------------------- the ingestion step's examples root
# <examples_root>/{train,eval,catalog}/ hold the shards (split names in
# contracts/pipeline.py); this file next to them records counts and the split rule.
INGEST_REPORT_FILE = "ingest_report.json"
# Its keys that other modules read (data/examples.py writes them; the run summary and
# the report read them): rows per split, the distinct users and items of the kept
# ratings, the catalogue items with at least one genre (none: the interest head has no
# labels) and with text (none: nothing for the text encoder to read), the distinct
# rating values (one: implicit feedback, no rating or like labels), the split protocol
# (which the ExampleGens record as contracts.pipeline.SPLIT_PROTOCOL) and the split rule.
INGEST_ROWS, INGEST_USERS, INGEST_ITEMS = "rows", "n_users", "n_items"
INGEST_ITEMS_WITH_GENRES = "n_items_with_genres"
INGEST_GENRES = "n_genres"  # distinct genres: under 2, the interest task has nothing to tell
INGEST_ITEMS_WITH_TEXT = "n_items_with_text"  # any text encoder input: none, no encoder
INGEST_RATING_VALUES = "rating_values"
# The like threshold the model will use (data.labels.like_threshold of the train
# split's highest rating; absent without training ratings) and, per split, how many
# ratings it labels liked and not liked: an eval split of one class leaves the relevance
# AUC undefined (TFMA reports 0), so the pipeline drops its bounds (pipeline/settings.py).
INGEST_LIKE_THRESHOLD = "like_threshold"
INGEST_LIKES = "likes"  # {split: {INGEST_LIKED: n, INGEST_NOT_LIKED: n}}
INGEST_LIKED, INGEST_NOT_LIKED = "liked", "not_liked"
# The eval split's RMSE when every rating is predicted as the train split's mean: a
# rating head no better than that constant has no skill, and the pipeline's RMSE bound
# is at most this (pipeline/settings.py Thresholds.for_ingest_report).
INGEST_MEAN_RMSE = "mean_rating_rmse"
INGEST_SPLIT_PROTOCOL = "split_protocol"
INGEST_SPLIT_RULE = "split_rule"  # how eval rows were chosen, in words (data/splits.py)
INGEST_SOURCE = "source"  # the dataset's name: "sample", "ml-100k/u1", ...

# ------------------------------------------- a SavedModel's layout (TF's names)
SAVED_MODEL_FILE = "saved_model.pb"  # the graph: a version is complete once it exists
SAVED_MODEL_TEXT_FILE = "saved_model.pbtxt"  # the same, as text
FINGERPRINT_FILE = "fingerprint.pb"
EXTRA_ASSETS_DIR = "assets.extra"  # TF Serving's: warmup requests, our text encoder
# In EXTRA_ASSETS_DIR of a version `mtrec add-items` pushed: the identity (sha256 hex of
# fingerprint.pb) of the pipeline's model it extends, so a re-run that pushes that model
# again keeps the extension served instead of a copy without the added items.
EXTENDS_FILE = "extends_model"

# ------------------------------------------------------ Trainer's model_run
TRAINING_METRICS_FILE = "training_metrics.json"  # run_fn's metrics (the summary reads it)
# Its keys that other modules read (models/trainer.py writes them; mtrec/summary.py and
# the report read them). The split protocol's key is contracts.pipeline.SPLIT_PROTOCOL.
TRAIN_SECONDS = "train_seconds"  # the whole model_run: scan, build, fit, evaluate, export
PHASE_SECONDS = "phase_seconds"  # {phase: seconds}, the phases in that order
FIT_PHASE = "fit"  # the epochs themselves (the epoch lines add up to it)
TRAIN_EXAMPLES = "train_examples"
CATALOG_SIZE = "catalog_size"
TRAINED_EPOCHS = "epochs"
TRAINED_OPTIMIZER = "optimizer"  # the resolved one ("auto" chooses)
# [logit scale, rating scale, shift] of the reported P(like): sigmoid(a logit + b rating + c)
LIKE_CALIBRATION = "like_calibration"
LIKE_CALIBRATION_IDENTITY = (1.0, 0.0, 0.0)  # no fit: the relevance head's own probability
TRAINED_PROTOCOL_OVERRIDES = "protocol_overrides"  # the model settings the split protocol set
# What the export built for serving, by its size rules (models/export.served_regime):
# {SERVED_FIRST_STAGE: "exact" | "ivf", SERVED_ITEM_ITEM: "dense" | "top_k" | "cold_only" |
# "off", SERVED_RATING_KNN: bool, SERVED_NEW_USER_PRIOR: "onboarding" | "popularity" |
# "off", SERVED_CACHED_USERS: int}
SERVED_REGIME = "served_regime"
SERVED_FIRST_STAGE, SERVED_ITEM_ITEM = "first_stage", "item_item"
SERVED_RATING_KNN, SERVED_NEW_USER_PRIOR = "rating_knn", "new_user_prior"
SERVED_CACHED_USERS = "cached_users"
# Each of model.evaluate's metrics on the eval split, under this prefix (e.g. the interest
# head's contracts.metrics.INTEREST_AUC is "eval_interest_auc").
EVAL_METRIC_PREFIX = "eval_"
TENSORBOARD_DIR = "tensorboard"
# The weights `mtrec add-items` re-indexes with: a TF checkpoint plus the
# resolved ModelConfig as JSON (models/trainer.py: save_weights writes both, load_config
# and restore_weights read them).
WEIGHTS_DIR = "weights"
WEIGHTS_CHECKPOINT = "model"
WEIGHTS_CONFIG_FILE = "config.json"

# ------------------------------------------------ RetrievalEvaluator's blessing
RETRIEVAL_METRICS_FILE = "retrieval_metrics.json"
# Its keys: the served metrics ({name: value}), the thresholds ({name: bound}) and
# the failed ones ({name: [value, bound]}); the summary and the report read them.
RETRIEVAL_METRICS, RETRIEVAL_THRESHOLDS, RETRIEVAL_FAILED = "metrics", "thresholds", "failed"
BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"

# ------------------------------------------ TextEncoder's ItemTextEmbeddings
VOCAB_FILE = "vocab.txt"  # WordPiece vocabulary, one token per line, id = line
ITEM_IDS_FILE = "item_ids.txt"  # one item id per line, row order of embeddings
EMBEDDINGS_FILE = "embeddings.npy"  # float32 [N, D], L2-normalised rows
# float32 [N, D], same rows: the encoder's vector of the description alone, L2-normalised;
# zeros where an item has none (the cold-item map's second input block)
DESCRIPTION_EMBEDDINGS_FILE = "description_embeddings.npy"
ENCODER_DIR = "encoder"  # TF SavedModel: serving_default(text) -> embedding
PRESET_DIR = "preset"  # keras-hub preset (backbone + tokenizer) of the encoder
METADATA_FILE = "metadata.json"  # mode, sizes, steps, losses, timings
# Its keys that other layers read (components/text_encoder/executor.py writes them;
# mtrec/summary.py and the run report read them).
ENCODER_MODE = "mode"
ENCODER_NAME = "encoder_name"  # the checkpoint's name, e.g. sentence-transformers/...
ENCODER_PARAMS = "encoder_params"
ENCODER_CONFIG = "config"  # TextEncoderConfig.to_dict()
ENCODER_SEQUENCE_LENGTH = "sequence_length"  # the one chosen for the corpus
ENCODED_ITEMS = "num_items"
ENCODED_DIM = "embedding_dim"
PRETRAIN_SECONDS = "pretrain_seconds"  # the masked-LM step's seconds (a custom property)
ENCODE_CACHED = "encode_cached"  # the vectors came from the encoder's cache
ENCODER_SECONDS = "seconds"  # {phase: seconds}, ENCODE_PHASE among them
ENCODE_PHASE = "encode"
MLM_REPORT = "mlm"  # the masked-LM pre-training (no steps when the encoder is frozen):
MLM_STEPS, MLM_SECONDS = "steps", "seconds"
MLM_LOSS_BEFORE, MLM_LOSS_AFTER = "loss_before", "loss_after"

# A push copies into `<serving dir>/<STAGING_PREFIX><version>-<random>/` and renames it
# into place (components/atomic_pusher); one left behind is a killed push's
# (`mtrec prune` removes it).
STAGING_PREFIX = ".incoming-"
# `mtrec add-items` re-indexes in `<home>/<ADD_ITEMS_WORK_PREFIX><random>/` and removes
# it when done; one left behind is a killed call's (`mtrec prune` removes it).
ADD_ITEMS_WORK_PREFIX = "add-items-"
