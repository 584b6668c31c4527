"""What the latest pipeline run did, read back from ML Metadata (SQLite).

Used by the run summary and by the end-to-end tests: both ask MLMD rather than
scraping logs or guessing artifact folders.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ml_metadata.proto import metadata_store_pb2

from mtrec.contracts.pipeline import (
    NODE_CONTEXT_TYPE,
    PUSHED,
    PUSHED_MODEL,
    PUSHER,
    RUN_CONTEXT_TYPE,
)
from mtrec.pipeline.mlmd_store import open_store

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from ml_metadata import metadata_store

_STATES = metadata_store_pb2.Execution.State
# MLMD's execution states by the names NodeRun.state holds.
CACHED, FAILED, RUNNING = (_STATES.Name(s) for s in (_STATES.CACHED, _STATES.FAILED,
                                                     _STATES.RUNNING))


@dataclasses.dataclass(frozen=True)
class NodeRun:
    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, ...
    outputs: dict[str, list[metadata_store_pb2.Artifact]]
    # Its times (create/last_update_time_since_epoch, ms) and exec properties.
    execution: metadata_store_pb2.Execution | None = None


def output_uri(node: NodeRun | None, key: str) -> str | None:
    """The uri of `node`'s first `key` output; None when the node did not run or wrote none."""
    if node is None or not node.outputs.get(key):
        return None
    return node.outputs[key][0].uri


def _runs(store: metadata_store.MetadataStore) -> list[metadata_store_pb2.Context]:
    return sorted(store.get_contexts_by_type(RUN_CONTEXT_TYPE),
                  key=lambda c: (c.create_time_since_epoch, c.id))


def latest_run(sqlite_path: str, run_index: int = -1) -> dict[str, NodeRun]:
    """Node id -> what happened to it in one pipeline run (default: the latest)."""
    store = open_store(sqlite_path)
    runs = _runs(store)
    if not runs:
        return {}
    executions = store.get_executions_by_context(runs[run_index].id)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    outputs: dict[int, dict[str, list[int]]] = {}
    for ev in events:
        if ev.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT):
            key = ev.path.steps[0].key if ev.path.steps else ""
            outputs.setdefault(ev.execution_id, {}).setdefault(key, []).append(ev.artifact_id)
    artifact_ids = [a for per in outputs.values() for ids in per.values() for a in ids]
    artifacts = {a.id: a for a in store.get_artifacts_by_id(artifact_ids)} if artifact_ids else {}
    result = {}
    for execution in executions:
        node = next(
            (c.name.split(".", 1)[-1] for c in store.get_contexts_by_execution(execution.id)
             if c.type == NODE_CONTEXT_TYPE),
            str(execution.id),
        )
        result[node] = NodeRun(
            node_id=node,
            state=_STATES.Name(execution.last_known_state),
            outputs={
                k: [artifacts[i] for i in ids if i in artifacts]
                for k, ids in outputs.get(execution.id, {}).items()
            },
            execution=execution,
        )
    return result


def pushed_runs(sqlite_path: str, before_latest: bool = False) -> Iterator[dict[str, NodeRun]]:
    """The runs whose Pusher pushed its model (or found it already pushed), newest first.
    `before_latest`: only those before the newest run."""
    last = len(_runs(open_store(sqlite_path))) - (2 if before_latest else 1)
    for index in range(last, -1, -1):
        nodes = latest_run(sqlite_path, index)
        pusher = nodes.get(PUSHER)
        pushed = pusher.outputs.get(PUSHED_MODEL) if pusher else None
        if pushed and custom_property(pushed[0], PUSHED):
            yield nodes


def latest_pushed_run(sqlite_path: str, before_latest: bool = False) -> dict[str, NodeRun]:
    """The newest run whose Pusher pushed its model (or found it already pushed): the
    run behind the served model, unless a version was removed by hand since. {} when no
    run pushed one (all refused, or none). `before_latest`: among the runs before the
    newest, the run served until it ran."""
    return next(pushed_runs(sqlite_path, before_latest), {})


def nothing_pushed(home: str) -> str:
    """The error for `mtrec add-items` on a home whose runs pushed no model: read from
    MLMD alone, so the command says it before TensorFlow loads (~10 s)."""
    return f"{home}: no run pushed a model yet, so there is no served catalogue to add items to"


def custom_property(
    record: metadata_store_pb2.Artifact | metadata_store_pb2.Execution, name: str
) -> int | float | str | bool | Message | None:
    """The value of one of an artifact's (or execution's) custom properties, or None."""
    value = record.custom_properties.get(name)
    if value is None:
        return None
    return getattr(value, value.WhichOneof("value"))
