"""Pipeline constants. No I/O, no environment reads: runners own paths."""

from __future__ import annotations

PIPELINE_NAME = "mtrec"

PREPROCESSING_FN = "mtrec.models.preprocessing.preprocessing_fn"
RUN_FN = "mtrec.models.trainer.run_fn"

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
CATALOG_SPLIT = "catalog"

# Model hyper-parameters passed to the Trainer (see models/model.py ModelConfig).
MODEL_CONFIG: dict = {}

# Blessing thresholds. TFMA: value thresholds on the eval split, plus change
# thresholds against the latest blessed model (skipped on the first run).
RATING_RMSE_MAX = 1.5  # an item-mean predictor scores ~1.03 on ML-100K
RATING_RMSE_MAX_INCREASE = 0.05  # vs the baseline model
RELEVANCE_AUC_MIN = 0.55
# Full-catalogue retrieval (RetrievalEvaluator): HR@K lower bounds.
RETRIEVAL_KS = (10, 50, 100)
RETRIEVAL_THRESHOLDS = {"hit_rate@100": 0.05}

# Beam: DirectRunner in multi-processing mode locally; Dataflow/Flink/Spark via
# beam_pipeline_args (see BUILD.md). The worker count is filled in by a runner.
LOCAL_BEAM_ARGS = (
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
)
