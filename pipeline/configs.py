"""Pipeline constants. No I/O, no environment reads: runners own paths."""

from __future__ import annotations

from mtrec.contracts import pipeline as P
from mtrec.contracts.metrics import HIT_RATE, NDCG_CHANCE_LIFT, NDCG_CHANGE, NDCG_LIFT, at

PIPELINE_NAME = "mtrec"

PREPROCESSING_FN = "mtrec.models.preprocessing.preprocessing_fn"
RUN_FN = "mtrec.models.trainer.run_fn"

# Settings with their defaults: pipeline/settings.py (PipelineSettings); model
# hyper-parameters: models/config.py (ModelConfig); TextEncoder settings:
# components/text_encoder/config.py (TextEncoderConfig).

# Blessing thresholds. TFMA: value thresholds on the eval split, plus change
# thresholds against the last pushed model (skipped on the first run).
RATING_RMSE_MAX = 1.5  # an item-mean predictor scores ~1.03 on ML-100K
# vs the baseline (the pushed model). 0.01 is ~3.5 std of the RMSE difference
# between two trainings that differ only in their seed (std 0.002 per model on
# ML-100K u1 and on ml-latest-small; benchmarks/results/quality_*.md; measured
# as TFMA measures it, 3.4-5.9 std: gate_spread_*.md). It was
# 0.05: measured on u1, a 3-epoch model 0.026 worse than the pushed 8-epoch
# one (0.910 vs 0.884) was blessed and pushed.
RATING_RMSE_MAX_INCREASE = 0.01
RELEVANCE_AUC_MIN = 0.55
# Relevance AUC may fall by at most this much against the pushed model: ~3 std
# of the AUC difference between two trainings that differ only in their seed
# on ml-latest-small (0.0035), ~4 on ML-100K u1 (0.0023), ~5 on the sample
# (0.0018), as the RMSE bound (benchmarks/results/gate_spread_*.md). It was
# 0.05, 14-28 such std: it passed u1's 1-epoch model (AUC 0.019-0.022 below
# the 8-epoch seeds'), which 0.01 refuses against each of them.
RELEVANCE_AUC_MAX_DECREASE = 0.01
# The served path (RetrievalEvaluator): lower bounds on its metrics. Relative
# ones: `recommend`'s NDCG@10 at least 5% above popularity's on the same users
# (ndcg@10_lift) and 5% above a random order's (ndcg@10_chance_lift: popularity can
# rank below chance, and a one-user log scored 1.0 in any order; both pushed models
# that learned nothing), and at most 0.01 below the last pushed model's
# (ndcg@10_change; skipped on the first run; ~2 std of the difference between
# two seeds on ml-latest-small, whose per-model std is 0.0035, 7 on ML-100K u1's
# 0.001). Absolute: full-catalogue HR@100.
RETRIEVAL_THRESHOLDS = {at(HIT_RATE, 100): 0.05, NDCG_LIFT: 0.05, NDCG_CHANCE_LIFT: 0.05,
                        NDCG_CHANGE: -0.01}

# Kubeflow/Vertex: where the Dockerfile copies the curated schema (pipeline/schema/), in
# the image's working directory (IMAGE_WORKDIR: what a pod resolves a relative path in).
IMAGE_WORKDIR = "/opt/mtrec"
IMAGE_SCHEMA_PATH = f"{IMAGE_WORKDIR}/schema/schema.pbtxt"
# Beam and TFX read a component's inputs by file pattern (`<uri>/Split-train/*`), so a
# `[`, `]`, `*` or `?` anywhere in an artifact's path is read as a pattern character:
# a sample run under "runs [v2]/" wrote its examples, then failed in its first component
# with "No files found based on the file pattern .../runs [v2]/examples/.../catalog/*".
# TFX builds those patterns itself, so `mtrec run` refuses such a --home and `mtrec
# compile` such a pipeline root, examples root or serving directory.
PATTERN_CHARACTERS = "[]*?"
# Every KFP v2 task's command: TFX's container entrypoint run by ours, which
# skips TFX's sdist of itself for in-pod Beam (pipeline/kfp_entrypoint.py).
KFP_TASK_COMMAND = ("python", "-m", "mtrec.pipeline.kfp_entrypoint")

# Beam: the FnApiRunner locally; Dataflow/Flink/Spark via beam_pipeline_args
# (see BUILD.md). Not "DirectRunner": since Beam 2.68 the DirectRunner first
# tries most pipelines on Prism, a Go runner it downloads from GitHub on first
# use (without a timeout), and falls back to the FnApiRunner only when that
# fails. Where GitHub is unreachable, as here, every such pipeline pays a
# failed attempt and leaves a `beam-temp*` folder in /tmp; where it is
# reachable, the pipeline runs on Prism, which this project never tested or
# measured, and which does not read direct_running_mode. Beam's maintainers
# recommend pinning the FnApiRunner (apache/beam#34612).
# The worker count is filled in by a runner. Multi-processing starts fresh
# worker processes, which import TensorFlow and TFX, for every Beam component;
# on a small input that start-up outweighs the work, so below
# IN_PROCESS_MAX_ROWS ratings `mtrec run` runs Beam in-process instead
# (local_runner.beam_args; measured in benchmarks/results/pipeline_wall.md).
LOCAL_RUNNER = "FnApiRunner"
LOCAL_BEAM_ARGS = (
    f"--runner={LOCAL_RUNNER}",
    "--direct_running_mode=multi_processing",
)
IN_PROCESS_BEAM_ARGS = (
    f"--runner={LOCAL_RUNNER}",
    "--direct_running_mode=in_memory",
    "--direct_num_workers=1",
)
BEAM_MODES = ("auto", "in_process", "multi_processing")
DIRECT_WORKERS = 2  # multi-processing worker processes: this project's CI cores
IN_PROCESS_MAX_ROWS = 200_000

# Trainer custom_config["distribution"]: the tf.distribute strategy run_fn uses
# (None: the default strategy, one device).
DISTRIBUTIONS = P.DISTRIBUTIONS

# Names of the str RuntimeParameters create_pipeline (PipelineSettings.runtime_parameters)
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
