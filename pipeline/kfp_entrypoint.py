"""The command of every KFP v2 task: TFX's container entrypoint, minus its TFX sdist.

`KubeflowV2DagRunner` makes each task run
`python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`.
In a pod, that entrypoint's Beam executors package the installed TFX as an
sdist for remote Beam workers (tfx_packaging.py: 49 MB and ~2 s per Beam
component) even when the Beam args run the FnApiRunner inside the pod, the
default (kubeflow_v2_runner.DEFAULT_BEAM_ARGS), where nothing reads it. This
module runs the same entrypoint inside `without_tfx_package`, which changes
nothing for a remote runner (Dataflow still gets TFX's package unless the
args name the image). `kubeflow_v2_runner` compiles it in as every task's
command (configs.KFP_TASK_COMMAND). tests/test_kfp_local.py runs a compiled
spec and checks the tasks' logs for the packaging step;
tests/test_private_apis.py pins TFX's flag parser, used here as TFX uses it.
"""

from __future__ import annotations

import sys

from absl import app
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

from mtrec.pipeline.tfx_packaging import without_tfx_package


def run(argv: list[str]) -> None:
    """Runs TFX's entrypoint on `argv` (its flags, then the Beam args)."""
    # The runner check reads only Beam's --runner; the executor flags are ignored.
    with without_tfx_package(argv[1:]):
        app.run(
            kubeflow_v2_run_executor.main,
            argv=argv,
            flags_parser=kubeflow_v2_run_executor._parse_flags,
        )


if __name__ == "__main__":
    run(sys.argv)
