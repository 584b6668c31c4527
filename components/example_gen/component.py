"""StreamingImportExampleGen: the stock ImportExampleGen with a streaming write.

Same spec, parameters and outputs as `tfx.components.ImportExampleGen`; only
the executor differs (see executor.py for why). Use it for inputs that are
already in random order, as mtrec's example writer produces.
"""

from __future__ import annotations

from tfx.components import ImportExampleGen
from tfx.dsl.components.base import executor_spec

from mtrec.components.example_gen.executor import Executor


class StreamingImportExampleGen(ImportExampleGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
