"""RetrievalEvaluator: full-catalogue hit rate of the trained model, as a blessing.

TFMA scores one (user, item) example at a time, so it cannot measure
retrieval over the whole catalogue. This component calls the exported
`retrieve` signature for every eval interaction, computes HR@K (FactorizedTopK
semantics: seen items are not excluded) next to a popularity baseline from
the train split, and blesses the model when every threshold is met. Past
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

from mtrec.components.retrieval_evaluator.executor import Executor


class RetrievalEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {
        "ks": ExecutionParameter(type=str),  # JSON list of K
        "thresholds": ExecutionParameter(type=str),  # JSON {"hit_rate@100": 0.2}
        "eval_split": ExecutionParameter(type=str, optional=True),
        "train_split": ExecutionParameter(type=str, optional=True),
        "max_users": ExecutionParameter(type=int, optional=True),  # 0 = every eval user
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "model": ChannelParameter(type=standard_artifacts.Model),
    }
    OUTPUTS = {"blessing": ChannelParameter(type=standard_artifacts.ModelBlessing)}


class RetrievalEvaluator(base_component.BaseComponent):
    SPEC_CLASS = RetrievalEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        thresholds: dict[str, float],
        ks: tuple[int, ...] = (10, 50, 100),
        eval_split: str = "eval",
        train_split: str = "train",
        max_users: int = 10_000,
    ):
        bad = [m for m in thresholds if m.split("@")[0] != "hit_rate"
               or int(m.split("@")[1]) not in ks]
        if bad:
            raise ValueError(f"thresholds must be hit_rate@K for K in {ks}: {bad}")
        super().__init__(
            spec=RetrievalEvaluatorSpec(
                examples=examples,
                model=model,
                ks=json.dumps(sorted(ks)),
                thresholds=json.dumps(thresholds, sort_keys=True),
                eval_split=eval_split,
                train_split=train_split,
                max_users=max_users,
                blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            )
        )
