"""Whether the code a pipeline runs changed since a home's last finished run.

TFX's cache key is a component's inputs and execution properties. The Trainer
and Transform name their functions by dotted path (configs.RUN_FN,
PREPROCESSING_FN) and mtrec's own components by class path, so a change to
their code changes no key. After such a change (an upgrade, an edit of
models/), `mtrec run` took every component from the cache: on 2026-12-04 a run
after the describe_items signature was added re-used the model trained before
it and said "already served: no new version". TFX's own remedy, a module file
whose content is hashed, covers one file, not a package.

So the local runner hashes the source of every package that runs inside a
component, and the installed versions of the libraries that compute its
results, and puts that fingerprint on every component's outputs, which TFX
hashes into the component's cache key (pipeline.key_by_code): an execution of
other code never matches. Turning the cache off for a run alone did not do it:
TFX answers from the newest matching execution of any earlier run, so the run
after the cache-off one, on data an older run had read, took that older run's
TextEncoder vectors (and ExampleGen, StatisticsGen outputs), of the code from
before the change. When the fingerprint differs from what the home's last
finished run recorded, the run still says so and goes without the cache
(pipeline/local_runner.py).
"""

from __future__ import annotations

import os

from mtrec.source_fingerprint import fingerprint, package_roots

# The packages whose code runs in the pipeline's components; the CLI, the console and
# the report (mtrec, mtrec.commands, mtrec.report) change no result and are left out.
PACKAGES = ("mtrec.contracts", "mtrec.data", "mtrec.models", "mtrec.components",
            "mtrec.pipeline", "mtrec.serving")
LIBRARIES = ("tfx", "tensorflow", "tf-keras", "tensorflow-transform",
             "tensorflow-model-analysis", "tensorflow-recommenders", "keras-hub", "numpy")


def pipeline_fingerprint() -> str:
    """The fingerprint of PACKAGES' source and LIBRARIES' versions."""
    return fingerprint(package_roots(PACKAGES), LIBRARIES)


def recorded(path: str) -> str | None:
    """The fingerprint a finished run wrote to `path`, or None."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read().strip() or None


def record(path: str, value: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(value + "\n")


def stale_cache_reason(code_path: str, metadata_path: str, current: str) -> str | None:
    """Why this run must not use the cache, or None when it may.

    A home with metadata but no recorded fingerprint ran code from before it was
    recorded: unknown, so treated as changed. A home without metadata has nothing
    cached.
    """
    if not os.path.exists(metadata_path):
        return None
    before = recorded(code_path)
    if before == current:
        return None
    what = "not recorded" if before is None else "changed"
    return (f"mtrec's pipeline code or its libraries {what} since this home's last finished "
            "run: every component runs again (the cache is off for this run)")
