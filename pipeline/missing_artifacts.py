"""Artifacts whose folders were removed by hand: marked DELETED before a local run starts.

TFX's cache checks that a cached output still exists before it reuses it (a
removed model is trained again), but the latest-blessed-model resolver does not:
it hands the gates the newest blessed model that ML Metadata records as LIVE,
folder or not. After `rm -rf pipeline_root/Trainer/model/39` (the served run's
model), every later run of that home trained for minutes and then failed in the
RetrievalEvaluator with "SavedModel file does not exist at .../Trainer/model/39",
and `mtrec prune` kept that run (it pushed), so no run could pass again (a user's
probe, 2026-12-07).

`mtrec prune` marks what it removes DELETED, and TFX's resolvers and cache see
only LIVE artifacts (mtrec/prune.py). This does the same for what a person
removed: before the pipeline runs, while the run holds the home's lock, every
LIVE artifact whose folder lay inside the pipeline root and is gone is marked
DELETED. The resolver then offers the newest blessed model that still exists
(or none, as on a first run), and the run says what it marked.
"""

from __future__ import annotations

import os

from ml_metadata.proto import metadata_store_pb2

from mtrec.pipeline.home_paths import within
from mtrec.pipeline.mlmd_store import open_store

_LIVE = metadata_store_pb2.Artifact.LIVE


def forget_missing_artifacts(metadata_path: str, pipeline_root: str) -> tuple[str, ...]:
    """Mark DELETED every LIVE artifact whose folder inside `pipeline_root` is gone;
    returns their URIs. Artifacts outside the root (a home moved since it ran: they
    are another home's) are left alone. Only call it while holding the home's lock."""
    if not os.path.exists(metadata_path) or not os.path.getsize(metadata_path):
        return ()
    root = os.path.realpath(pipeline_root)
    store = open_store(metadata_path, writable=True)
    gone = [a for a in store.get_artifacts()
            if a.state == _LIVE and a.uri and within(a.uri, root) and not os.path.exists(a.uri)]
    if not gone:
        return ()
    for artifact in gone:
        artifact.state = metadata_store_pb2.Artifact.DELETED
    store.put_artifacts(gone)
    return tuple(a.uri for a in gone)


def describe(uris: tuple[str, ...], pipeline_root: str) -> str:
    """The console line for what `forget_missing_artifacts` marked."""
    shown = ", ".join(os.path.relpath(u, pipeline_root) for u in uris[:3])
    more = f" and {len(uris) - 3} more" if len(uris) > 3 else ""
    return (f"{len(uris)} artifact(s) whose folder was removed marked deleted in ML Metadata "
            f"({shown}{more}): the cache and the baseline model no longer offer them")
