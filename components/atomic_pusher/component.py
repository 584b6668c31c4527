"""AtomicPusher: TFX's Pusher, but a version directory appears all at once.

The stock Pusher copies files straight into `<base>/<version>/`, so a model
server polling the base directory can see a half-written version. This one
copies into a hidden, non-numeric temporary directory and renames it, which
model servers ignore until the rename makes it a numeric version. On object
stores (gs://), which cannot rename atomically, it writes saved_model.pb last
(executor.py says why).
"""

from __future__ import annotations

from tfx.components import Pusher
from tfx.dsl.components.base import executor_spec

from mtrec.components.atomic_pusher.executor import Executor


class AtomicPusher(Pusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
