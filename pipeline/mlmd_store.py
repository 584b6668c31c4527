"""Opening the local pipeline's ML Metadata store (SQLite), the one way every reader does.

The run summary, the report and the wall-time benchmark only read it; the local
runner's killed-run sweep (killed_runs.py) marks a dead run's executions failed,
so it opens the store writable. One opener in the pipeline layer, so the CLI
layer's run_state and the pipeline's own sweep do not each build the config.

A file ML Metadata cannot open (damaged, say by a full disk, or not MLMD's) raised
its RuntimeError naming the SQL query that failed, not the file: `mtrec run` in such
a home ingested, failed in the pipeline and then printed a traceback, and `mtrec
report` and `mtrec add-items` printed only the traceback. It is a StoreError now,
which names the file, and the commands check for one before they start
(commands/options.py).
"""

from __future__ import annotations

import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2


class StoreError(ValueError):
    """A metadata.sqlite that ML Metadata cannot open."""


def open_store(sqlite_path: str, *, writable: bool = False) -> metadata_store.MetadataStore:
    """The store at `sqlite_path`, read-only unless `writable`."""
    modes = metadata_store_pb2.SqliteMetadataSourceConfig
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = sqlite_path
    config.sqlite.connection_mode = modes.READWRITE if writable else modes.READONLY
    try:
        return metadata_store.MetadataStore(config)
    except RuntimeError as err:
        raise StoreError(_unreadable(sqlite_path, str(err))) from None


def store_problem(sqlite_path: str) -> str | None:
    """Why a command cannot read the store at `sqlite_path` (an existing file), or None."""
    if os.path.getsize(sqlite_path) == 0:  # a run stopped before it recorded anything
        return f"{sqlite_path}: empty: no run has recorded anything in this home yet"
    try:
        open_store(sqlite_path)
    except StoreError as err:
        return str(err)
    return None


def _unreadable(sqlite_path: str, error: str) -> str:
    # "Error when executing query: file is not a database query: CREATE TABLE ..."
    reason = error.removeprefix("Error when executing query: ").split(" query:")[0].strip()
    if "readonly database" in reason:  # a read-only open found no MLMD tables to read
        reason = "a database without ML Metadata's tables"
    return (f"{sqlite_path}: ML Metadata cannot read it ({reason}). It is the record of "
            "this home's runs and is left as it is; a new `mtrec run` needs a new --home, "
            "or this home moved aside")
