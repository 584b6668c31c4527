"""`mtrec prune`: give back the disk that old runs' artifacts hold, without breaking TFX.

TFX's local runner keeps every run's artifacts and has no garbage collection. A
home grows with each retrain: the sample's first run takes 227 MB and each
retrain adds 31 MB (the Pusher's archive and the served version are hard links to
the Trainer's files, data/artifact_io.link_tree; 330 MB when they were copies),
and each run that re-runs the TextEncoder or ingests new data adds more.

What stays:
- every artifact that an execution of the newest `keep_runs` runs read or
  wrote. That covers the outputs a cached execution reuses from an older run
  (TFX links a cached execution to them), and the baseline model and blessing
  that the resolver handed the gates (its INTERNAL_OUTPUT events): so the model
  a kept run compared against stays too, and each kept run's record stays whole;
- the run that pushed the served model, whatever its age: `mtrec add-items`
  re-indexes from its Trainer, Transform, catalogue and text artifacts, and the
  next run's gates compare against its model;
- the served versions from the oldest one a kept run pushed on (the served
  version, the kept runs' pushes and the `mtrec add-items` versions after them),
  and any version neither a run nor `mtrec add-items` wrote;
- the `examples/<digest>/` folders that a kept run's ExampleGen read.

What stopped processes left goes too, whatever the run (pipeline/killed_runs.py
leftovers): a killed execution's folders that held files, TFX's stateful working
folders and a killed push's `.incoming-*` staging folder; nothing reads them again.

Everything else an older run wrote goes, and its artifacts are marked DELETED in
ML Metadata. TFX then treats them as gone: its cache reuses only LIVE outputs
(tfx/orchestration/portable/cache_utils.py) and its resolvers see only LIVE
artifacts (input_resolution/channel_resolver.py), so a later run computes again
what it needs instead of pointing at a removed folder (tests/test_prune.py runs
TFX to show both). An artifact is marked MARKED_FOR_DELETION before its folder
goes and DELETED after: an interrupted prune leaves nothing TFX would reuse, and
the next prune finishes the job. Artifacts whose folder lies outside the home (a
home moved since it ran) are left alone and counted.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterable

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from mtrec.contracts.artifacts import EXTENDS_FILE, EXTRA_ASSETS_DIR
from mtrec.contracts.pipeline import (
    INPUT_BASE,
    NODE_CONTEXT_TYPE,
    PUSHED,
    PUSHED_DESTINATION,
    PUSHER,
    RUN_CONTEXT_TYPE,
)
from mtrec.pipeline.home_lock import home_lock
from mtrec.pipeline.home_paths import LocalPaths, within
from mtrec.pipeline.killed_runs import SYSTEM_DIR, execution_folders, leftovers, node_id
from mtrec.pipeline.mlmd_store import open_store
from mtrec.run_state import custom_property, latest_pushed_run
from mtrec.serving.versions import VERSION_RE, list_versions

_ARTIFACT = metadata_store_pb2.Artifact
_REMOVABLE = (_ARTIFACT.LIVE, _ARTIFACT.PENDING, _ARTIFACT.MARKED_FOR_DELETION)


@dataclasses.dataclass(frozen=True)
class PrunePlan:
    """What `prune` removes (or, dry, would remove) from one home."""

    runs: int  # pipeline runs the home recorded
    kept_runs: tuple[str, ...]  # their names (start times), oldest first
    pruned_runs: int  # older runs that still held something to remove
    artifact_ids: tuple[int, ...]  # artifacts marked DELETED
    folders: tuple[str, ...]  # everything removed from disk, artifact folders included
    size: int  # bytes that removing `folders` frees (hard links counted once, when all go)
    outside: int = 0  # removable artifacts whose folder is not in this home: left alone
    leftovers: int = 0  # of `folders`, what stopped processes left (killed_runs.leftovers)

    def describe(self, dry_run: bool = False) -> str:
        if not self.artifact_ids and not self.folders:
            return (f"nothing to free: {self.runs} run(s), each kept or already pruned"
                    + (f"; {self.outside} artifact(s) outside this home left alone"
                       if self.outside else ""))
        verb = "would free" if dry_run else "freed"
        text = (f"{verb} {self.size / 1e6:,.0f} MB: {len(self.artifact_ids)} artifact(s) and "
                f"{len(self.folders)} folder(s) of {self.pruned_runs} older run(s); kept "
                f"{len(self.kept_runs)} of {self.runs} run(s) "
                f"({', '.join(self.kept_runs) or 'none'})")
        if self.leftovers:
            text += f"; {self.leftovers} of the folders left by stopped runs or pushes"
        if self.outside:
            text += f"; {self.outside} artifact(s) outside this home left alone"
        return text


def plan(home: str, keep_runs: int) -> PrunePlan:
    """What pruning `home` down to its newest `keep_runs` runs removes (module doc)."""
    if keep_runs < 1:
        raise ValueError(f"keep_runs must be at least 1, got {keep_runs}")
    paths = LocalPaths(home)
    store = open_store(paths.metadata_path)
    runs = sorted(store.get_contexts_by_type(RUN_CONTEXT_TYPE),
                  key=lambda c: (c.create_time_since_epoch, c.id))
    kept = {r.id for r in runs[-keep_runs:]} | _pushed_run(paths.metadata_path, store)
    executions = {r.id: store.get_executions_by_context(r.id) for r in runs}
    kept_executions = [e for r in runs if r.id in kept for e in executions[r.id]]
    old_runs = [r for r in runs if r.id not in kept]
    old_executions = [e for r in old_runs for e in executions[r.id]]
    linked = {r.id: _linked(store, executions[r.id]) for r in runs}  # one read a run
    kept_ids = set().union(*(linked[r] for r in kept))
    old_linked = set().union(*(linked[r.id] for r in old_runs))
    linked_ids = kept_ids | old_linked
    artifacts = store.get_artifacts_by_id(sorted(linked_ids)) if linked_ids else []
    root = os.path.realpath(paths.pipeline_root)
    removable = [a for a in artifacts if a.id not in kept_ids and a.state in _REMOVABLE]
    inside = [a for a in removable if within(a.uri, root)]
    inside_ids = {a.id for a in inside}
    folders = [a.uri for a in inside if os.path.isdir(a.uri)]
    scratch = _scratch(store, paths.pipeline_root, {r.id: executions[r.id] for r in old_runs})
    folders += [f for r in old_runs for f in scratch[r.id]]
    folders += _old_versions(
        paths.serving_model_dir,
        _pushed_versions(a for a in artifacts if a.id in kept_ids),
        _pushed_versions(a for a in artifacts if a.id in old_linked))
    folders += _old_examples(paths.examples_dir, old_executions, kept_executions)
    planned = set(folders)
    debris = [f for f in leftovers(store, paths.pipeline_root, paths.serving_model_dir,
                                   paths.home)
              if f not in planned]
    folders += debris
    return PrunePlan(
        runs=len(runs),
        kept_runs=tuple(r.name for r in runs if r.id in kept),
        pruned_runs=sum(1 for r in old_runs if scratch[r.id] or linked[r.id] & inside_ids),
        artifact_ids=tuple(a.id for a in inside),
        folders=tuple(folders),
        size=freed_bytes(folders),
        outside=len(removable) - len(inside),
        leftovers=len(debris),
    )


def prune(home: str, keep_runs: int, dry_run: bool = False) -> PrunePlan:
    """Plan, and unless `dry_run` remove, holding the home's lock (no run can start)."""
    with home_lock(home):
        return _prune_held(home, keep_runs, dry_run)


def _prune_held(home: str, keep_runs: int, dry_run: bool = False) -> PrunePlan:
    """`prune`, for a caller that already holds the home's lock."""
    found = plan(home, keep_runs)
    if not dry_run:
        apply(home, found)
    return found


HINT_MB = 500  # `mtrec run` suggests a prune once older runs hold this much


def prune_hint(home: str, at_least_mb: float = HINT_MB) -> str | None:
    """The run summary's line suggesting `mtrec prune`, when older runs hold
    `at_least_mb` or more; None below that, or when the store cannot say."""
    try:
        found = plan(home, keep_runs=1)
    except (OSError, ValueError):  # no store (StoreError is a ValueError): no hint
        return None
    if found.size < at_least_mb * 1e6:
        return None
    return (f"disk: {found.pruned_runs} older run(s) hold "
            f"{found.size / 1e6:,.0f} MB: `mtrec prune {home}` frees them")


def after_run(home: str, keep_runs: int | None) -> str | None:
    """The run summary's disk line. With `keep_runs` (`mtrec run --keep-runs`),
    prune the home to that many runs and say what went; the caller, `mtrec run`,
    already holds the home's lock. Without it, `prune_hint`'s suggestion."""
    if keep_runs is None:
        return prune_hint(home)
    return f"disk: {_prune_held(home, keep_runs).describe()}"


def apply(home: str, found: PrunePlan) -> None:
    """Mark, remove, mark: see the module doc for why in this order."""
    if not found.artifact_ids and not found.folders:
        return
    store = open_store(LocalPaths(home).metadata_path, writable=True)
    _set_state(store, found.artifact_ids, _ARTIFACT.MARKED_FOR_DELETION)
    for folder in found.folders:
        shutil.rmtree(folder, ignore_errors=True)
    _set_state(store, found.artifact_ids, _ARTIFACT.DELETED)


def _set_state(store: metadata_store.MetadataStore, ids: tuple[int, ...],
               state: metadata_store_pb2.Artifact.State) -> None:
    if not ids:
        return
    artifacts = store.get_artifacts_by_id(list(ids))
    for artifact in artifacts:
        artifact.state = state
    store.put_artifacts(artifacts)


def _pushed_run(metadata_path: str, store: metadata_store.MetadataStore) -> set[int]:
    """The id of the run behind the served model ({} when nothing was pushed)."""
    pusher = latest_pushed_run(metadata_path).get(PUSHER)
    if pusher is None or pusher.execution is None:
        return set()
    run_type = store.get_context_type(RUN_CONTEXT_TYPE).id
    return {c.id for c in store.get_contexts_by_execution(pusher.execution.id)
            if c.type_id == run_type}


def _linked(store: metadata_store.MetadataStore,
            executions: list[metadata_store_pb2.Execution]) -> set[int]:
    """Every artifact the executions read or wrote, by any kind of event."""
    if not executions:
        return set()
    return {ev.artifact_id for ev in store.get_events_by_execution_ids([e.id for e in executions])}


def _pushed_versions(artifacts: Iterable[metadata_store_pb2.Artifact]) -> set[int]:
    """The served versions that these artifacts (a Pusher's among them) say were pushed,
    or found served already."""
    destinations = (custom_property(a, PUSHED_DESTINATION) for a in artifacts
                    if custom_property(a, PUSHED))
    names = (os.path.basename(os.path.normpath(str(d))) for d in destinations if d)
    return {int(n) for n in names if VERSION_RE.fullmatch(n)}


def _old_versions(serving_dir: str, kept: set[int], made: set[int]) -> list[str]:
    """Served versions older than every version a kept run pushed (none when no kept
    run pushed) that an older run pushed (`made`) or `mtrec add-items` wrote. Versions
    only grow (atomic_pusher.next_version) and the newest run that pushed is always
    kept, so the served version never goes; nor does one that neither wrote (a
    version put there by hand)."""
    if not kept or not os.path.isdir(serving_dir):
        return []
    oldest = min(kept)
    return [path for version, path in sorted(list_versions(serving_dir).items())
            if version < oldest and (version in made or os.path.isfile(
                os.path.join(path, EXTRA_ASSETS_DIR, EXTENDS_FILE)))]


def _old_examples(examples_dir: str, old: list[metadata_store_pb2.Execution],
                  kept: list[metadata_store_pb2.Execution]) -> list[str]:
    """`examples/<digest>/` folders that only pruned runs' ExampleGens read."""
    def read(executions: list[metadata_store_pb2.Execution]) -> set[str]:
        bases = (custom_property(e, INPUT_BASE) for e in executions)
        return {os.path.basename(os.path.normpath(str(b))) for b in bases if b}

    names = read(old) - read(kept)
    return sorted(os.path.join(examples_dir, n) for n in names
                  if os.path.isdir(os.path.join(examples_dir, n)))


def _scratch(store: metadata_store.MetadataStore, pipeline_root: str,
             executions: dict[int, list[metadata_store_pb2.Execution]]) -> dict[int, list[str]]:
    """Per run, the launcher's scratch folders (`<node>/.system/...`) of its executions."""
    if not any(executions.values()):
        return {run: [] for run in executions}
    node_type = store.get_context_type(NODE_CONTEXT_TYPE).id
    found: dict[int, list[str]] = {}
    for run, run_executions in executions.items():
        found[run] = []
        for execution in run_executions:
            node = node_id(store.get_contexts_by_execution(execution.id), node_type)
            found[run] += [f for f in execution_folders(pipeline_root, node, execution.id)
                           if os.sep + SYSTEM_DIR + os.sep in f] if node else []
    return found


def freed_bytes(folders: list[str]) -> int:
    """Bytes that removing `folders` gives back: a file's, once, when every hard link to
    it is inside them (artifacts and served versions share the model's files:
    data/artifact_io.link_tree), so a link whose file lives on elsewhere counts nothing."""
    seen: dict[tuple[int, int], list[int]] = {}  # inode -> [links seen, links, size]
    for folder in folders:
        for base, _, names in os.walk(folder):
            for name in names:
                st = os.lstat(os.path.join(base, name))
                entry = seen.setdefault((st.st_dev, st.st_ino), [0, st.st_nlink, st.st_size])
                entry[0] += 1
    return sum(size for found, links, size in seen.values() if found >= links)
