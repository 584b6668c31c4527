"""`RetrievalBlessing`: the RetrievalEvaluator's verdict, an artifact type of its own.

Why not TFX's `ModelBlessing`: the KFP v2 compiler turns the pipeline's
latest-blessed-model resolver into a query for the newest LIVE
`tfx.ModelBlessing` with `blessed` = 1 in the pipeline's context, without the
producer filter (the Evaluator) that the local resolver applies. A
ModelBlessing from this component would match whenever it was written after
TFMA's, and its `current_model_id` (an MLMD id; TFX rewrites only TFMA's into
the artifact name the next query looks up) names no model: on Vertex the
baseline, and with it every change threshold, would vanish for that run.
tests/test_kubeflow_v2_runner.py checks that the Evaluator is the only
producer of `tfx.ModelBlessing` in the compiled spec.

Custom properties (set by the executor): `blessed` (1/0, contracts.pipeline
BLESSED; TFMA's Evaluator and the Pusher run only when it is 1),
`current_model`, `current_model_id`, and every served metric
(`hit_rate_at_100`, ...).
"""

from __future__ import annotations

from tfx.types import artifact


class RetrievalBlessing(artifact.Artifact):
    """Whether the model passed the served-metric thresholds, with those metrics."""

    # KFP v2 needs custom artifact type names of the form "namespace.Name", and
    # a pod imports that name as a class path (mtrec/__init__.py).
    TYPE_NAME = "mtrec.RetrievalBlessing"
