"""LinkedImportExampleGen: the stock ImportExampleGen, linking examples already written.

Same spec, parameters, driver (spans, versions, the input fingerprint that TFX
caches on) and outputs as `tfx.components.ImportExampleGen`; only the executor
differs: it links gzipped TFRecord splits into the artifact instead of writing
every record again, and writes in input order where it cannot (executor.py
says why). Use it for inputs already in random order, as mtrec's example writer
produces them.
"""

from __future__ import annotations

from tfx.components import ImportExampleGen
from tfx.dsl.components.base import executor_spec

from mtrec.components.example_gen.executor import Executor


class LinkedImportExampleGen(ImportExampleGen):
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
