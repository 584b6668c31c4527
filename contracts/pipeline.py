"""Names the pipeline's pieces agree on: splits, node ids, channel and config keys.

A reader of an artifact (the summary, `mtrec add-items`, the Trainer's catalogue
read) finds it by node id and channel key, so these must match what
`pipeline/pipeline.py` builds; both sides import them from here.
"""

from __future__ import annotations

# ------------------------------------------------------------------ splits
# Folders under examples_root, ExampleGen split names, and the Split-<name>
# folders TFX writes inside an Examples artifact.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
CATALOG_SPLIT = "catalog"
SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)
# TFX's folder layout of a split inside an artifact (artifact_utils writes
# "Split-<name>"; pinned by tests/test_contracts.py).
SPLIT_DIR_PREFIX = "Split-"

# ---------------------------------------------------------------- node ids
EXAMPLE_GEN = "ImportExampleGen"
CATALOG_GEN = "CatalogExampleGen"
TEXT_ENCODER = "TextEncoder"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "CuratedSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
TRANSFORM = "Transform"
TRAINER = "Trainer"
BASELINE_RESOLVER = "latest_blessed_model_resolver"
EVALUATOR = "Evaluator"
RETRIEVAL_EVALUATOR = "RetrievalEvaluator"
PUSHER = "AtomicPusher"

# ------------------------------------------------- ML Metadata context types
# TFX's (tfx.dsl.compiler.constants; pinned by tests/test_contracts.py): the
# summary, the report and killed-run clean-up find a run's executions by them. A
# node context is named "<pipeline>.<node id>".
RUN_CONTEXT_TYPE = "pipeline_run"
NODE_CONTEXT_TYPE = "node"

# ------------------------------------------------------------ channel keys
# TFX's standard keys (equal to tfx.types.standard_component_specs.*_KEY;
# pinned by tests/test_contracts.py) and mtrec's own.
EXAMPLES = "examples"
TRANSFORM_GRAPH = "transform_graph"
TRANSFORMED_EXAMPLES = "transformed_examples"
MODEL = "model"
MODEL_RUN = "model_run"
BASELINE_MODEL = "baseline_model"
BLESSING = "blessing"
EVALUATION = "evaluation"
ANOMALIES = "anomalies"
STATISTICS = "statistics"
SCHEMA = "schema"
PUSHED_MODEL = "pushed_model"
ITEM_CATALOG = "item_catalog"
ITEM_TEXT_EMBEDDINGS = "item_text_embeddings"
GATE_RESULT = "result"  # the AnomalyGate's output: the anomalies it let through

# ------------------------------------------- RetrievalEvaluator exec properties
KS = "ks"  # JSON list of K for HR@K
THRESHOLDS = "thresholds"  # JSON {metric: lower bound} (contracts.metrics names)
EVAL_SPLIT_KEY = "eval_split"
TRAIN_SPLIT_KEY = "train_split"
MAX_USERS = "max_users"  # 0 = every eval user

# -------------------------------------------------- Trainer custom_config keys
CONFIG_MODEL = "model"  # ModelConfig fields (plus "epochs")
CONFIG_DISTRIBUTION = "distribution"  # None or one of DISTRIBUTIONS
MIRRORED, MULTI_WORKER_MIRRORED = "mirrored", "multi_worker_mirrored"  # tf.distribute's
DISTRIBUTIONS = (MIRRORED, MULTI_WORKER_MIRRORED)
# Filled in by the CatalogTrainer's executor from its optional inputs.
CONFIG_ITEM_CATALOG_URI = "item_catalog_uri"  # the catalogue split's folder
CONFIG_ITEM_TEXT_EMBEDDINGS_URI = "item_text_embeddings_uri"
CONFIG_SPLIT_PROTOCOL = "split_protocol"  # the examples' (SPLIT_PROTOCOL below)

# ------------------------------------------------- artifact custom properties
BLESSED = "blessed"  # int 1/0 on TFMA's ModelBlessing and the RetrievalBlessing
PUSHED = "pushed"
PUSHED_DESTINATION = "pushed_destination"
# int 1 on a PushedModel when the Pusher found its model served already (the latest
# version, or add-items' extension of it) and wrote no new version.
ALREADY_SERVED = "already_served"
# str on a PushedModel when the Pusher pushed, in its model's place, the newest
# `mtrec add-items` version of it (that version's number): its added items served again.
PUSHED_EXTENSION = "pushed_extension"
# str on every Examples artifact the ExampleGens write: the split protocol that
# ingestion recorded beside the splits (ingest_report.json), read at run time
# because data_root is a run-time parameter on Kubeflow.
SPLIT_PROTOCOL = "split_protocol"
# str on every artifact a local run's components write: the fingerprint of mtrec's
# pipeline code and libraries that wrote it (pipeline/code_version.py). TFX hashes an
# execution's output artifacts, custom properties included, into its cache key, so an
# execution of other code never answers from the cache (pipeline/pipeline.py).
CODE_VERSION = "mtrec_code_version"

# ------------------------------------------------------ ExampleGen exec properties
INPUT_BASE = "input_base"  # TFX's (standard_component_specs.INPUT_BASE_KEY): the examples root


def split_dir_name(split: str) -> str:
    """The folder of `split` inside an Examples artifact, e.g. "Split-train"."""
    return SPLIT_DIR_PREFIX + split
