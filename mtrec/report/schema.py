"""The report's data: what collect.py builds and page.py renders, declared once.

Both sides use these keys: mypy checks every key collect.py writes and every key read
by subscript (`.get` of an undeclared key is not flagged, so declare it here first). Every
section is total=False: page.py shows "not recorded" for what a run left out (a run
killed early, a home from an older mtrec), and tests render hand-made partial data.
Values read from artifacts' own JSON (training metrics, retrieval metrics, the
TextEncoder's metadata) stay dicts: their keys are contracts.artifacts'.
"""

from __future__ import annotations

from typing import Any, TypedDict

from mtrec.summary import RecommendedItem


class ComponentRow(TypedDict):
    id: str  # the node id
    state: str  # run_state's COMPLETE, CACHED, FAILED, RUNNING, ...
    cached: bool
    start_s: float  # after the first component's start
    seconds: float


class DataSection(TypedDict, total=False):
    counts: dict[str, int]  # summary.json's ingestion counts (kept, rejected, by reason)
    rejects_path: str
    report: dict[str, Any]  # write_examples' report: rows per split, n_users, n_items
    tables: dict[str, dict[str, Any]]  # per input table: rows, kept, rejected, duplicate
    notes: list[str]  # what was read otherwise than the format says (data.tables.Dataset)
    rating_histogram: dict[str, dict[str, int] | None]  # split -> rating -> count
    anomalies: dict[str, list[str]] | None  # split -> ExampleValidator's anomalies


class PipelineSection(TypedDict, total=False):
    components: list[ComponentRow]
    pushed_to: str | None
    already_served: bool
    not_pushed: str | None  # why nothing was pushed
    log: str | None  # the run log, relative to the home
    error: str | None  # the failed component's error, its last line (from the run log)
    not_run: list[str]  # components a run that stopped (failed, killed) never started
    beam: str | None  # what ran the Beam stages (summary.json's `beam`)


class TrainedConfig(TypedDict, total=False):
    """What the page shows of the Trainer's saved ModelConfig."""

    loss_weights: dict[str, float]  # task -> weight
    tasks: list[str]
    uncertainty_weighting: bool
    optimizer: str
    epochs: int


class TrainingSection(TypedDict, total=False):
    metrics: dict[str, Any] | None  # the Trainer's TRAINING_METRICS_FILE
    curves: dict[str, dict[str, list[float]]] | None  # train / validation -> name -> epochs
    config: TrainedConfig | None
    like_rule: str  # the like label the run used, in words (data.labels.like_rule)
    pushed: bool  # whether the run pushed the trained model


class EvaluationSection(TypedDict, total=False):
    tfma: list[dict[str, Any]]  # output, metric, value, baseline, diff, bounds
    tfma_blessed: bool | None
    tfma_verdict: str | None
    retrieval: dict[str, Any] | None  # the RetrievalEvaluator's RETRIEVAL_METRICS_FILE
    retrieval_blessed: bool | None
    implicit_feedback: bool  # one rating value: TFMA bounds only the example count
    like_rule: str  # the like label the run used, in words (data.labels.like_rule)
    # "only likes (N)" / "only dislikes (N)": the eval split's one like class, which leaves
    # the relevance AUC undefined and unbounded (data.labels.single_like_class)
    one_like_class: str | None


class TextEncoderSection(TypedDict, total=False):
    mode: str | None
    name: str | None
    params: int | None
    embedding_dim: int | None
    num_items: int | None
    encode_cached: bool | None
    config: dict[str, Any] | str  # the settings the mode reads
    mlm: dict[str, Any]  # steps, seconds, loss_before, loss_after
    seconds: dict[str, float]  # per phase, "encode" among them


class ExampleUser(TypedDict, total=False):
    user_id: str
    items: list[RecommendedItem]
    interest: dict[str, float]  # genre -> score


class Report(TypedDict, total=False):
    home: str
    generated: str  # when the page was built, UTC
    data: DataSection
    pipeline: PipelineSection
    training: TrainingSection
    evaluation: EvaluationSection
    text_encoder: TextEncoderSection | None
    examples: list[ExampleUser]
