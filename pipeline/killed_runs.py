"""Clean up after a killed local run: executions left RUNNING, and their empty output folders.

How TFX 1.16 itself treats them (tfx/orchestration/portable/launcher.py,
execution_publish_utils.py, outputs_utils.py): the LocalDagRunner's launcher
registers every execution as RUNNING before its executor starts, creates its
output folders (`<pipeline_root>/<node>/<output key>/<execution id>/`, made by
`outputs_utils.make_output_dirs`) and a scratch folder
(`<node>/.system/executor_execution/<id>/.temp/`). Only when the executor
*raises* does the launcher publish the execution FAILED
(`publish_failed_execution`) and remove its output folders
(`remove_output_dirs`). A process killed by a signal (SIGKILL, OOM killer,
power loss) does neither, and nothing in TFX does it later: the next run has a
new `pipeline_run` context, so `_register_or_reuse_execution` (which reuses
an active execution only within the *same* run's contexts) registers a fresh
execution, and the cache (`cache_utils.get_cached_outputs`) only ever reuses
successful ones. The killed execution stays RUNNING in MLMD for good and its
empty folders stay on disk. That is harmless for correctness, which is why
TFX leaves it, but it misreports the run's history and litters the artifacts.

`mtrec run` therefore, before it starts the pipeline and only while it holds
the home folder's lock (pipeline/home_lock.py: so no live run can own a RUNNING
execution), marks every RUNNING execution FAILED (MLMD executions have no ABANDONED state;
FAILED is what TFX itself records for a failed executor) with a custom
property saying why, and removes those executions' output and scratch folders
that hold no file. A folder with any file in it is kept: this never deletes
data.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ml_metadata import errors, metadata_store
from ml_metadata.proto import metadata_store_pb2

from mtrec.contracts.artifacts import ADD_ITEMS_WORK_PREFIX, STAGING_PREFIX
from mtrec.contracts.pipeline import NODE_CONTEXT_TYPE
from mtrec.pipeline.mlmd_store import open_store

ABANDONED_PROPERTY = "mtrec_abandoned"
SYSTEM_DIR = ".system"
EXECUTOR_EXECUTION_DIR = "executor_execution"
STATEFUL_DIR = "stateful_working_dir"  # TFX 1.16 outputs_utils (tests/test_killed_runs.py)


@dataclass(frozen=True)
class Cleanup:
    """What `clean_killed_runs` did."""

    failed: tuple[int, ...] = ()  # execution ids marked FAILED
    removed: tuple[str, ...] = ()  # empty folders removed
    kept: tuple[str, ...] = ()  # their folders that hold files, left alone

    def __bool__(self) -> bool:
        return bool(self.failed or self.removed)

    def describe(self) -> str:
        text = (
            f"{len(self.failed)} execution(s) left RUNNING by a killed run marked FAILED "
            f"(ids {list(self.failed)}); {len(self.removed)} empty output folder(s) removed"
        )
        return text + (f"; kept (not empty): {list(self.kept)}" if self.kept else "")


def _node_type_id(store: metadata_store.MetadataStore) -> int | None:
    try:
        return store.get_context_type(NODE_CONTEXT_TYPE).id
    except errors.NotFoundError:
        return None


def node_id(contexts: list[metadata_store_pb2.Context], node_type_id: int | None) -> str | None:
    """TFX names a node context `<pipeline>.<node id>`."""
    for ctx in contexts:
        if ctx.type_id == node_type_id:
            return ctx.name.split(".", 1)[-1]
    return None


def execution_folders(pipeline_root: str, node: str, execution_id: int) -> list[str]:
    """The folders the launcher made for one execution of `node` that exist."""
    node_dir = os.path.join(pipeline_root, node)
    if not os.path.isdir(node_dir):
        return []
    keys = sorted(k for k in os.listdir(node_dir) if k != SYSTEM_DIR)
    candidates = [os.path.join(node_dir, k, str(execution_id)) for k in keys]
    candidates.append(os.path.join(node_dir, SYSTEM_DIR, EXECUTOR_EXECUTION_DIR, str(execution_id)))
    return [c for c in candidates if os.path.isdir(c) and not os.path.islink(c)]


def holds_files(folder: str) -> bool:
    return any(files for _, _, files in os.walk(folder))


def remove_empty_tree(folder: str) -> bool:
    """Remove a folder that holds only empty folders; rmdir refuses anything else."""
    try:
        for root, _, _ in os.walk(folder, topdown=False):
            os.rmdir(root)
    except OSError:
        return False
    return True


def leftovers(store: metadata_store.MetadataStore, pipeline_root: str,
               serving_dir: str, home: str | None = None) -> list[str]:
    """Folders that only a stopped process left and that nothing reads again.

    - the output and scratch folders of executions a killed run left, which
      clean_killed_runs kept because they held files (a killed Trainer's partial model
      or TensorBoard events: a probe found them kept for good);
    - TFX's stateful working folders (`<node>/.system/stateful_working_dir/<id>`): its
      launcher removes each when its execution succeeds, and a new pipeline run never
      resumes an earlier run's execution;
    - a push's staging folders (`<serving dir>/.incoming-*`), renamed into place when
      the push completes;
    - `mtrec add-items`' work folders (`<home>/add-items-*`), removed when it ends.
    For `mtrec prune`, which holds the home's lock: no live process owns any of them.
    """
    node_type_id = _node_type_id(store)
    found: list[str] = []
    for execution in store.get_executions():
        if ABANDONED_PROPERTY in execution.custom_properties:
            node = node_id(store.get_contexts_by_execution(execution.id), node_type_id)
            found += execution_folders(pipeline_root, node, execution.id) if node else []
    if os.path.isdir(pipeline_root):
        for node in sorted(os.listdir(pipeline_root)):
            stateful = os.path.join(pipeline_root, node, SYSTEM_DIR, STATEFUL_DIR)
            if os.path.isdir(stateful):
                found += [os.path.join(stateful, d) for d in sorted(os.listdir(stateful))]
    if os.path.isdir(serving_dir):
        found += [os.path.join(serving_dir, d) for d in sorted(os.listdir(serving_dir))
                  if d.startswith(STAGING_PREFIX)]
    if home is not None and os.path.isdir(home):
        found += [os.path.join(home, d) for d in sorted(os.listdir(home))
                  if d.startswith(ADD_ITEMS_WORK_PREFIX)]
    return [f for f in found if os.path.isdir(f) and not os.path.islink(f)]


def clean_killed_runs(metadata_path: str, pipeline_root: str, now: float | None = None) -> Cleanup:
    """Mark RUNNING executions FAILED and drop their empty folders (see module doc).

    Only call it while holding the home's lock (home_lock): a RUNNING execution of
    a live run would otherwise be marked too.
    """
    if not os.path.exists(metadata_path):
        return Cleanup()
    store = open_store(metadata_path, writable=True)
    running = [
        e
        for e in store.get_executions()
        if e.last_known_state == metadata_store_pb2.Execution.RUNNING
    ]
    if not running:
        return Cleanup()
    node_type_id = _node_type_id(store)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
    removed: list[str] = []
    kept: list[str] = []
    for execution in running:
        execution.last_known_state = metadata_store_pb2.Execution.FAILED
        execution.custom_properties[ABANDONED_PROPERTY].string_value = (
            f"left RUNNING by a process that died; marked FAILED by mtrec run at {stamp}"
        )
        node = node_id(store.get_contexts_by_execution(execution.id), node_type_id)
        for folder in execution_folders(pipeline_root, node, execution.id) if node else []:
            if not holds_files(folder) and remove_empty_tree(folder):
                removed.append(folder)
            else:
                kept.append(folder)
    store.put_executions(running)
    return Cleanup(tuple(e.id for e in running), tuple(removed), tuple(kept))
