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
# The served path (RetrievalEvaluator): lower bounds on its metrics. Relative
# ones: `recommend`'s NDCG@10 at least 5% above popularity's on the same users
# (ndcg@10_lift), and at most 0.01 below the last blessed model's
# (ndcg@10_change; skipped on the first run). Absolute: full-catalogue HR@100.
RETRIEVAL_KS = (10, 50, 100)
RETRIEVAL_THRESHOLDS = {"hit_rate@100": 0.05, "ndcg@10_lift": 0.05, "ndcg@10_change": -0.01}
# The RetrievalEvaluator scores a seeded sample of this many eval users (0 = all):
# enough for HR@K to +-0.01, and its cost stops growing with users x items.
RETRIEVAL_EVAL_MAX_USERS = 10_000

# Beam: DirectRunner in multi-processing mode locally; Dataflow/Flink/Spark via
# beam_pipeline_args (see BUILD.md). The worker count is filled in by a runner.
LOCAL_BEAM_ARGS = (
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
)

# Trainer custom_config["distribution"]: the tf.distribute strategy run_fn uses
# (None: the default strategy, one device).
DISTRIBUTIONS = ("mirrored", "multi_worker_mirrored")

# Names of the str RuntimeParameters create_pipeline(runtime_parameters=True)
# exposes (KFP v2 / Vertex pipeline inputs, overridable per run).
PARAM_DATA_ROOT = "data_root"  # ImportExampleGen input_base
PARAM_TRAINER_CONFIG = "trainer_custom_config"  # JSON: {"model": {...,"epochs": N}, ...}
PARAM_EVAL_CONFIG = "eval_config"  # JSON tfma.EvalConfig (RMSE/AUC thresholds)
PARAM_RETRIEVAL_THRESHOLDS = "retrieval_thresholds"  # JSON like RETRIEVAL_THRESHOLDS
RUNTIME_PARAMETERS = (
    PARAM_DATA_ROOT,
    PARAM_TRAINER_CONFIG,
    PARAM_EVAL_CONFIG,
    PARAM_RETRIEVAL_THRESHOLDS,
)

# TextEncoder settings (components/text_encoder/config.py); the defaults
# encode the catalogue with the pretrained all-MiniLM-L6-v2, frozen (ML-100K:
# seconds once cached; see benchmarks/results/text_encoder_*.md).
TEXT_ENCODER_CONFIG: dict = {}
