"""Runs the pipeline locally: LocalDagRunner, Beam's FnApiRunner (in-process or multi-processing),
MLMD on SQLite, caching on. This module owns every local path.

A run holds `<home>/.mtrec-run.lock` and first cleans up after a killed run
(executions left RUNNING, their empty output folders: pipeline/killed_runs.py), and
marks artifacts whose folders were removed by hand deleted (missing_artifacts.py).
On a local Beam runner, TFX's Beam executors do not package TFX for remote
workers (pipeline/tfx_packaging.py). TFX's cache key does not see code, so the
fingerprint of the pipeline's code and libraries (pipeline/code_version.py) goes on
every output, into every component's cache key (pipeline.key_by_code): no run takes
an output of other code from the cache. When that fingerprint changed since the
home's last finished run, the run also says so and goes without the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence
from importlib import resources
from typing import Any

from tfx import v1 as tfx

from mtrec.pipeline import code_version, configs, missing_artifacts
from mtrec.pipeline.home_lock import home_lock
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.pipeline.killed_runs import clean_killed_runs
from mtrec.pipeline.pipeline import create_pipeline
from mtrec.pipeline.settings import PipelineSettings
from mtrec.pipeline.tfx_packaging import without_tfx_package
from mtrec.progress import report


def curated_schema_path() -> str:
    return str(resources.files("mtrec.pipeline") / "schema" / "schema.pbtxt")


def beam_args(mode: str = "multi_processing", workers: int = configs.DIRECT_WORKERS,
              rows: int | None = None) -> list[str]:
    """Local Beam runner arguments for a mode in configs.BEAM_MODES.

    "auto" runs in-process below configs.IN_PROCESS_MAX_ROWS input ratings and
    multi-processing from there on (or when `rows` is unknown). The arguments
    are part of each Beam component's cache key, so one input keeps one mode.
    """
    if mode == "auto":
        small = rows is not None and rows < configs.IN_PROCESS_MAX_ROWS
        mode = "in_process" if small else "multi_processing"
    if mode == "in_process":
        return list(configs.IN_PROCESS_BEAM_ARGS)
    if mode == "multi_processing":
        return [*configs.LOCAL_BEAM_ARGS, f"--direct_num_workers={workers}"]
    raise ValueError(f"beam mode must be one of {configs.BEAM_MODES}, not {mode!r}")


def describe_beam(args: Sequence[str]) -> str:
    """What runs the Beam stages, in words (the run summary's `beam` line), from their
    pipeline args: which runner ran was otherwise only in the run log."""
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in args if "=" in arg)
    if flags.get("runner") == "PortableRunner":
        return (f"portable runner: Beam's embedded job service, external SDK worker pool at "
                f"{flags.get('environment_config')}, one SDK worker per job")
    runner = flags.get("runner", "DirectRunner")  # configs: FnApiRunner (no Prism download)
    if flags.get("direct_running_mode") == "multi_processing":
        return f"{runner}, {flags.get('direct_num_workers')} worker processes"
    return f"{runner}, in-process"


def settings(
    paths: LocalPaths,
    *,
    examples_root: str,
    workers: int = configs.DIRECT_WORKERS,
    beam_mode: str = "multi_processing",
    rows: int | None = None,
    runner_args: list[str] | None = None,
    **fields: Any,
) -> PipelineSettings:
    """The local deployment's PipelineSettings: its paths, Beam mode and SQLite MLMD.

    `beam_mode`, `workers`, `rows`: see beam_args. `runner_args` replace the
    local runner's (e.g. pipeline/beam_portable.beam_args). `fields` are any
    other PipelineSettings fields (model, text_encoder, thresholds,
    enable_cache, ...); their defaults are PipelineSettings'.
    """
    return PipelineSettings(
        pipeline_root=paths.pipeline_root,
        examples_root=examples_root,
        schema_path=curated_schema_path(),
        serving_model_dir=paths.serving_model_dir,
        beam_pipeline_args=tuple(runner_args or beam_args(beam_mode, workers, rows)),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            paths.metadata_path
        ),
        **fields,
    )


def run(paths: LocalPaths, pipeline_settings: PipelineSettings,
        home_locked: bool = False) -> None:
    """Run the whole pipeline; `pipeline_settings` comes from `settings(paths, ...)`.

    Holds the home's lock (HomeInUseError when another process does); a caller that
    already holds it (`home_lock(paths.home)`, as `mtrec run` from before ingestion)
    passes home_locked=True.
    """
    code = code_version.pipeline_fingerprint()
    stale = code_version.stale_cache_reason(paths.code_path, paths.metadata_path, code) \
        if pipeline_settings.enable_cache else None
    if stale:
        report(stale)
        pipeline_settings = dataclasses.replace(pipeline_settings, enable_cache=False)
    pipeline = create_pipeline(pipeline_settings, code_version=code)
    with contextlib.nullcontext() if home_locked else home_lock(paths.home):
        cleanup = clean_killed_runs(paths.metadata_path, paths.pipeline_root)
        if cleanup:
            report(cleanup.describe())
        gone = missing_artifacts.forget_missing_artifacts(paths.metadata_path,
                                                          paths.pipeline_root)
        if gone:
            report(missing_artifacts.describe(gone, paths.pipeline_root))
        # A new home: all this run leaves in ML Metadata is this code's, so the code is
        # recorded now, and a first run that is stopped (Ctrl-C, a kill) resumes from
        # the cache (without it, its re-run found no record and went without).
        if not os.path.exists(paths.metadata_path):
            code_version.record(paths.code_path, code)
        with without_tfx_package(pipeline_settings.beam_pipeline_args):
            tfx.orchestration.LocalDagRunner().run(pipeline)
        # Only once every component ran: a failed run's re-run must not take the
        # components it never reached from the cache of the old code.
        code_version.record(paths.code_path, code)
