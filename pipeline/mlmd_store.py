"""Opening the local pipeline's ML Metadata store (SQLite), the one way every reader does.

The run summary, the report and the wall-time benchmark only read it; the local
runner's killed-run sweep (killed_runs.py) marks a dead run's executions failed,
so it opens the store writable. One opener in the pipeline layer, so the CLI
layer's run_state and the pipeline's own sweep do not each build the config.
"""

from __future__ import annotations

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2


def open_store(sqlite_path: str, *, writable: bool = False) -> metadata_store.MetadataStore:
    """The store at `sqlite_path`, read-only unless `writable`."""
    modes = metadata_store_pb2.SqliteMetadataSourceConfig
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = sqlite_path
    config.sqlite.connection_mode = modes.READWRITE if writable else modes.READONLY
    return metadata_store.MetadataStore(config)
