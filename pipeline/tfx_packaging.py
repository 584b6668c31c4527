"""Local Beam runs skip TFX's packaging of itself for remote Beam workers.

Every TFX Beam executor (ImportExampleGen, StatisticsGen, Transform, the
Evaluator, ...) given any Beam argument packages the installed TFX as an sdist
for the workers, unless an argument already names their dependencies
(`tfx.utils.dependency_utils.make_beam_dependency_flags`, called from
`BaseBeamExecutor.__init__`). It copies TFX's install folder into a new
`tempfile.mkdtemp()` folder, runs `setup.py sdist` there in a subprocess, and
never deletes the folder: 49 MB of /tmp and 1.7-2.2 s for each of the five
Beam components of every `mtrec run` (measured in its log, before this
module). A local runner's workers (the FnApiRunner's: configs.LOCAL_RUNNER)
are this process, or its children on the same site-packages, and never read
that package.

So for a local runner (Beam's StandardOptions.LOCAL_RUNNERS) the hook returns
the arguments unchanged. Other runners keep TFX's behaviour: the portable
runner of `mtrec run --beam-runner portable` rehearses what a remote runner stages.
`tests/test_private_apis.py` pins the hook: if TFX renames or stops calling it,
the test sees a package being built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from tfx.utils import dependency_utils


def is_local_runner(beam_args: Sequence[str]) -> bool:
    """Whether `beam_args` run Beam on this machine (FnApiRunner, DirectRunner, no runner)."""
    runner = PipelineOptions(list(beam_args)).view_as(StandardOptions).runner
    return (runner or StandardOptions.DEFAULT_RUNNER).split(".")[-1] in (
        StandardOptions.LOCAL_RUNNERS)


def _unchanged(beam_pipeline_args: list[str]) -> list[str]:
    return list(beam_pipeline_args)  # a copy: the executor extends what it gets


@contextlib.contextmanager
def without_tfx_package(beam_args: Sequence[str]) -> Iterator[bool]:
    """Within the block, TFX Beam executors do not package TFX if `beam_args` run
    locally; yields whether they skip it. Restores TFX's hook on exit."""
    if not is_local_runner(beam_args):
        yield False
        return
    original = dependency_utils.make_beam_dependency_flags
    dependency_utils.make_beam_dependency_flags = _unchanged
    try:
        yield True
    finally:
        dependency_utils.make_beam_dependency_flags = original
