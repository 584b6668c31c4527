"""One typed settings object for a pipeline definition, with every default in one place.

`mtrec run` (local_runner.py) and `mtrec compile` (kubeflow_v2_runner.py) build
a `PipelineSettings`; `create_pipeline` takes it. Model and text-encoder
defaults stay in their own dataclasses (`ModelConfig`, `TextEncoderConfig`):
these settings hold only the user's overrides, validated against those
dataclasses here, at definition time, so a typo fails before any component runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from mtrec.components.text_encoder.config import TextEncoderConfig
from mtrec.components.trainer.tfjob import TFJobTraining
from mtrec.components.trainer.vertex import VertexTraining
from mtrec.contracts.artifacts import INGEST_MEAN_RMSE, INGEST_RATING_VALUES
from mtrec.data.cleaning import is_implicit_feedback
from mtrec.data.labels import single_like_class
from mtrec.models.config import ModelConfig
from mtrec.pipeline import configs


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Blessing bounds: TFMA's value/change thresholds and the RetrievalEvaluator's.

    The RetrievalEvaluator's constructor checks `retrieval`'s names (in create_pipeline).
    """

    rating_rmse_max: float = configs.RATING_RMSE_MAX
    rating_rmse_max_increase: float = configs.RATING_RMSE_MAX_INCREASE
    relevance_auc_min: float = configs.RELEVANCE_AUC_MIN
    relevance_auc_max_decrease: float = configs.RELEVANCE_AUC_MAX_DECREASE
    retrieval: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: dict(configs.RETRIEVAL_THRESHOLDS)
    )
    # False for a log whose ratings are all one value (implicit feedback: clicks,
    # views): rating RMSE and relevance AUC then have no labels to measure (RMSE 0,
    # AUC 0), so a bound on them would refuse every model. TFMA then only checks
    # that it evaluated examples, and the served-path gate before it decides.
    rating_labels: bool = True
    # False for an eval split whose ratings are all likes, or all not (a held-out set of
    # likes; a log of 4s and 5s): the relevance AUC has one class to rank, so TFMA
    # reports 0 and its bounds (value and change) would refuse every model. They are
    # dropped, the RMSE bounds kept; the served-path gate decides the ranking.
    like_labels: bool = True

    def for_rating_values(self, distinct: int | None) -> Thresholds:
        """These bounds for data with `distinct` rating values (the ingest report's)."""
        if is_implicit_feedback(distinct):
            return dataclasses.replace(self, rating_labels=False)
        return self

    def for_ingest_report(self, report: Mapping[str, Any]) -> Thresholds:
        """These bounds for the data the ingest report describes: its rating values
        (for_rating_values), its eval split's like classes (data.labels
        single_like_class), and the RMSE bound at most that of predicting the training
        mean (INGEST_MEAN_RMSE: on ML-100K u1 1.154, the model 0.89)."""
        bounds = self.for_rating_values(report.get(INGEST_RATING_VALUES))
        if single_like_class(report):
            bounds = dataclasses.replace(bounds, like_labels=False)
        mean = report.get(INGEST_MEAN_RMSE)  # a rating head must beat the constant
        if isinstance(mean, float) and math.isfinite(mean) and mean < bounds.rating_rmse_max:
            bounds = dataclasses.replace(bounds, rating_rmse_max=mean)
        return bounds


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """Everything one pipeline definition depends on. Paths come from a runner."""

    pipeline_root: str
    examples_root: str  # holds train/, eval/ and catalog/ TFRecord folders
    schema_path: str
    serving_model_dir: str
    pipeline_name: str = configs.PIPELINE_NAME
    # ModelConfig overrides (models/config.py holds the defaults).
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # TextEncoderConfig overrides (components/text_encoder/config.py); None: no text encoder.
    text_encoder: Mapping[str, Any] | None = dataclasses.field(default_factory=dict)
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    distribution: str | None = None  # one of configs.DISTRIBUTIONS; None: one device
    vertex_training: VertexTraining | None = None  # Trainer as a Vertex AI custom job
    tfjob_training: TFJobTraining | None = None  # Trainer as a Kubeflow TFJob
    runtime_parameters: bool = False  # see pipeline.py's docstring
    baseline_model: bool = True  # False: no latest-blessed-model resolver (KFP OSS)
    beam_pipeline_args: tuple[str, ...] = ()
    metadata_connection_config: Any = None
    enable_cache: bool = True

    def __post_init__(self) -> None:
        if self.distribution not in (None, *configs.DISTRIBUTIONS):
            raise ValueError(f"distribution must be None or one of {configs.DISTRIBUTIONS}")
        if self.vertex_training is not None and self.tfjob_training is not None:
            raise ValueError("choose vertex_training or tfjob_training, not both")
        ModelConfig.from_dict(dict(self.model))  # unknown keys or bad values raise here
        unknown = TextEncoderConfig.unknown(self.text_encoder or {})
        if unknown:
            raise ValueError(f"unknown text encoder settings: {unknown}")
        object.__setattr__(self, "beam_pipeline_args", tuple(self.beam_pipeline_args))
