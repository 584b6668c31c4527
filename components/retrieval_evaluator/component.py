"""RetrievalEvaluator: the model measured through its served signatures, as a blessing.

TFMA scores one (user, item) example at a time, so it cannot measure what a
user is served. This component calls the exported `retrieve` signature for
every eval interaction (HR@K over the full catalogue, FactorizedTopK
semantics) and `recommend` for every eval user (NDCG/P/R@10, training items
excluded), next to popularity from the train split and the baseline model,
and blesses the model (a RetrievalBlessing, artifacts.py) when every
threshold is met; the relative ones (contracts.metrics NDCG_LIFT,
NDCG_CHANGE) make a model no better than popularity, or worse than the last
blessed one, fail. Past
`max_users` eval users it scores a seeded sample of them, so its cost grows
with the catalogue, not with users x catalogue. The
pipeline pushes only when both this blessing and TFMA's are positive.
"""

from __future__ import annotations

import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from mtrec.components.retrieval_evaluator.artifacts import RetrievalBlessing
from mtrec.components.retrieval_evaluator.executor import Executor
from mtrec.contracts.metrics import RETRIEVAL_KS, threshold_names
from mtrec.contracts.pipeline import (
    BASELINE_MODEL,
    BLESSING,
    EVAL_SPLIT,
    EVAL_SPLIT_KEY,
    EXAMPLES,
    KS,
    MAX_USERS,
    MODEL,
    THRESHOLDS,
    TRAIN_SPLIT,
    TRAIN_SPLIT_KEY,
)

# The RetrievalEvaluator scores a seeded sample of this many eval users (0 = all):
# enough for HR@K to +-0.01, and its cost stops growing with users x items.
DEFAULT_MAX_USERS = 10_000


class RetrievalEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {
        KS: ExecutionParameter(type=str),  # JSON list of K
        THRESHOLDS: ExecutionParameter(type=str),  # JSON {"hit_rate@100": 0.2, ...}
        EVAL_SPLIT_KEY: ExecutionParameter(type=str, optional=True),
        TRAIN_SPLIT_KEY: ExecutionParameter(type=str, optional=True),
        MAX_USERS: ExecutionParameter(type=int, optional=True),  # 0 = every eval user
    }
    INPUTS = {
        EXAMPLES: ChannelParameter(type=standard_artifacts.Examples),
        MODEL: ChannelParameter(type=standard_artifacts.Model),
        BASELINE_MODEL: ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {BLESSING: ChannelParameter(type=RetrievalBlessing)}


class RetrievalEvaluator(base_component.BaseComponent):
    SPEC_CLASS = RetrievalEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        thresholds: dict[str, float],
        ks: tuple[int, ...] = RETRIEVAL_KS,
        eval_split: str = EVAL_SPLIT,
        train_split: str = TRAIN_SPLIT,
        max_users: int = DEFAULT_MAX_USERS,
        baseline_model: types.BaseChannel | None = None,
    ) -> None:
        known = threshold_names(ks)
        bad = sorted(set(thresholds) - known)
        if bad:
            raise ValueError(f"thresholds must name one of {sorted(known)}: {bad}")
        super().__init__(
            spec=RetrievalEvaluatorSpec(
                examples=examples,
                model=model,
                baseline_model=baseline_model,
                ks=json.dumps(sorted(ks)),
                thresholds=json.dumps(thresholds, sort_keys=True),
                eval_split=eval_split,
                train_split=train_split,
                max_users=max_users,
                blessing=types.Channel(type=RetrievalBlessing),
            )
        )
