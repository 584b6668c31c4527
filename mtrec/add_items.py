"""`mtrec add-items`: new items into the served catalogue, no retraining.

Finds, in MLMD, the artifacts of the run that pushed the served model (the
pushed run whose model the newest version holds, not a later one whose model a gate
refused: served_run): Trainer
weights, Transform graph and transformed training data, the catalogue, the
TextEncoder output. It re-indexes with models/reindex.py and pushes the result
as a new version, atomically, next to the pipeline's pushes. Items add up: each
call serves every item added to the same served model so far (a newer pipeline
push starts afresh), and a call that changes none of them pushes nothing. Add
the same items to your items table too: the next pipeline run then trains with
them.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import shutil
import tempfile

import pandas as pd
import tensorflow as tf
import tensorflow_transform as tft
from ml_metadata.proto import metadata_store_pb2

from mtrec.components.atomic_pusher.executor import (
    added_digest,
    atomic_copy,
    extended_identity,
    mark_extension,
    model_identity,
    next_version,
)
from mtrec.components.text_encoder.new_items import extend_item_text
from mtrec.contracts import artifacts as A
from mtrec.contracts import features as F
from mtrec.contracts import pipeline as P
from mtrec.contracts.artifacts import WEIGHTS_DIR
from mtrec.data.artifact_io import read_split, split_dir
from mtrec.data.tables import (
    genre_list,
    int_column,
)
from mtrec.items_file import by_id, canonical, fit_items, latest_per_id, read_given_items
from mtrec.models.item_text import ItemText
from mtrec.models.reindex import reindex
from mtrec.models.serving_tables import genre_vocabulary
from mtrec.pipeline.home_lock import home_lock
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.run_state import NodeRun, latest_pushed_run, nothing_pushed, pushed_runs
from mtrec.serving.versions import list_versions
from mtrec.summary import shown_path


def _artifact(nodes: dict[str, NodeRun], node: str, key: str) -> metadata_store_pb2.Artifact:
    try:
        return nodes[node].outputs[key][0]
    except (KeyError, IndexError) as err:
        raise FileNotFoundError(
            f"no {node}.{key} in the run that pushed the served model; run `mtrec run` first"
        ) from err


def _uri(nodes: dict[str, NodeRun], node: str, key: str) -> str:
    return _artifact(nodes, node, key).uri


def _record(home: str, model_id: int) -> str:
    return os.path.join(home, A.ADDED_ITEMS_DIR, A.ADDED_ITEMS_RECORD.format(model_id=model_id))


def served_run(paths: LocalPaths) -> dict[str, NodeRun]:
    """The pushed run whose model the newest served version holds (or extends): the
    latest pushed run, unless versions were removed by hand since (a rollback, which
    add-items then undid by extending the rolled-back model). ValueError for a newest
    version that no run in this home pushed (put there by hand)."""
    runs = pushed_runs(paths.metadata_path)
    latest = next(runs, None)
    if latest is None:
        raise FileNotFoundError(nothing_pushed(paths.home))
    served = list_versions(paths.serving_model_dir) if os.path.isdir(
        paths.serving_model_dir) else {}
    if not served:
        return latest
    newest = served[max(served)]
    identity = extended_identity(newest) or model_identity(newest)
    for nodes in itertools.chain([latest], runs):
        if model_identity(_uri(nodes, P.PUSHER, P.PUSHED_MODEL)) == identity:
            return nodes
    raise ValueError(f"the served version {shown_path(newest)} holds no model that a run in "
                     f"{paths.home} pushed (put there by hand?): add-items extends a pushed "
                     "run's model; remove that version, or run `mtrec run`")


def left_out_by_retrain(home: str, catalogue: set[str]) -> list[str]:
    """After a run that pushed a new model: the items `mtrec add-items` served with the
    model served before it that this run's `catalogue` lacks (sorted). The new model
    serves its own catalogue, so they went out of service with the retrain unless
    the items table has them. [] when nothing was added to that model."""
    before = latest_pushed_run(os.path.join(home, A.MLMD_FILE), before_latest=True)
    model = before[P.TRAINER].outputs.get(P.MODEL) if P.TRAINER in before else None
    if not model or not os.path.exists(_record(home, model[0].id)):
        return []
    added = pd.read_csv(_record(home, model[0].id), dtype=str, keep_default_na=False)
    return sorted(set(added[F.ITEM_ID]) - catalogue)


def items_digest(items: pd.DataFrame) -> str:
    """What an add-items version records of the items it added (sha256 of them in id
    order, as read): a repeated call compares it with the newest version's."""
    return hashlib.sha256(by_id(items).to_csv(index=False).encode()).hexdigest()


def holds_items(base: str, pushed: str | None, digest: str) -> str | None:
    """The newest served version if it is add-items' extension of the pushed model with
    exactly these items, else None. Trusting the record alone said "nothing new" of a
    version that a re-run (a plain copy of the model) or a rollback had replaced."""
    served = list_versions(base) if os.path.isdir(base) else {}
    if not served or pushed is None:
        return None
    latest = served[max(served)]
    if extended_identity(latest) == pushed and added_digest(latest) == digest:
        return latest
    return None


def _some(values: list[str]) -> str:
    return ", ".join(values[:5]) + (", ..." if len(values) > 5 else "")


def item_notes(given: pd.DataFrame, earlier: pd.DataFrame | None,
               genre_vocab: set[str]) -> list[str]:
    """What add-items does with the file that the user may not expect, each said once:
    an id repeated in the file, or given otherwise by an earlier call (the last row
    replaces it), genres the model was not trained on (they share the unknown-genre
    bucket), and years that are not whole numbers. They were silent."""
    ids = given[F.ITEM_ID]
    kept = latest_per_id(given)  # the rows used: a replaced row's genres and year are not
    notes = []
    repeated = sorted(set(ids[ids.duplicated()]))
    if repeated:
        notes.append(f"{len(repeated)} item id(s) given more than once ({_some(repeated)}): "
                     "the last row of each is used")
    if earlier is not None and not earlier.empty:
        now = canonical(kept).set_index(F.ITEM_ID)
        before = canonical(earlier).set_index(F.ITEM_ID)
        changed = sorted(i for i in set(now.index) & set(before.index)
                         if not now.loc[i].equals(before.loc[i]))
        if changed:
            notes.append(f"{len(changed)} item id(s) added by an earlier add-items call "
                         f"({_some(changed)}): this file's row replaces theirs")
    if F.GENRES in given.columns:
        named = {g for value in kept[F.GENRES] for g in genre_list(value)}
        unknown = sorted(g for g in named if g.lower() not in genre_vocab)
        if unknown:
            known = (f"known: {', '.join(sorted(genre_vocab))}" if genre_vocab else
                     "the model was trained without genres")
            notes.append(f"{len(unknown)} genre(s) the model was not trained on "
                         f"({_some(unknown)}): they count as one unknown genre; {known}")
    notes += fit_items(kept)[1]
    if F.YEAR in given.columns:
        text = kept[F.YEAR].astype(str).str.strip()
        bad = text[(text != "") & (int_column(text, len(text)).to_numpy() == 0)]
        if not bad.empty:
            notes.append(f"{len(bad)} year(s) that are not whole numbers "
                         f"({_some(sorted(set(bad)))}): read from the title's trailing "
                         "\"(1995)\" where it has one, else as unknown")
    return notes


def add_items(home: str, items_path: str, home_locked: bool = False,
              read: tuple[pd.DataFrame, list[str]] | None = None) -> str:
    """Returns the pushed version directory. Holds the home's lock: a run in it could
    push a version of its own meanwhile (HomeInUseError while one does); a caller that
    holds it already (`mtrec add-items`, before TensorFlow loads) passes home_locked.
    A caller that has read the file already (`read_given_items`) passes what it read:
    the file is read once, so what was checked is what is added."""
    with contextlib.nullcontext() if home_locked else home_lock(home):
        return _add_items(home, read or read_given_items(items_path))


def _add_items(home: str, read: tuple[pd.DataFrame, list[str]]) -> str:
    paths = LocalPaths(os.path.abspath(home))
    # The served model's run: a later run whose model a gate refused is not served.
    nodes = served_run(paths)
    given, read_notes = read
    items = latest_per_id(given)
    # Cumulative: what earlier add-items gave the same served model, then these.
    # Each served model's added items so far: a second call keeps the first one's.
    record = _record(paths.home, _artifact(nodes, P.TRAINER, P.MODEL).id)
    base = paths.serving_model_dir
    earlier = pd.read_csv(record, dtype=str, keep_default_na=False) if os.path.exists(
        record) else None  # then add-items pushed the latest version
    tft_output = tft.TFTransformOutput(_uri(nodes, P.TRANSFORM, P.TRANSFORM_GRAPH))
    genre_vocab = {g.decode() for g in genre_vocabulary(tft_output)}
    for note in read_notes + item_notes(given, earlier, genre_vocab):
        print(f"note: {note}")
    if earlier is not None:
        items = latest_per_id(pd.concat([earlier, items], ignore_index=True))
    pushed = model_identity(_uri(nodes, P.PUSHER, P.PUSHED_MODEL))
    digest = items_digest(items)
    latest = holds_items(base, pushed, digest)
    if latest is not None:  # a call repeated, its version still the newest
        print(f"nothing new: the served model ({shown_path(latest)}) already holds these "
              f"items ({len(items)} added to it in all); no version pushed")
        return latest
    table = canonical(items)
    train_dir = split_dir(_uri(nodes, P.TRANSFORM, P.TRANSFORMED_EXAMPLES), P.TRAIN_SPLIT)
    spec = tft_output.transformed_feature_spec()
    scan = (
        read_split(train_dir)
        .batch(8192)
        .map(lambda x: tf.io.parse_example(x, spec))
    )
    item_text = None
    if nodes.get(P.TEXT_ENCODER):
        item_text = extend_item_text(
            ItemText.load(_uri(nodes, P.TEXT_ENCODER, P.ITEM_TEXT_EMBEDDINGS)), table
        )
    work = tempfile.mkdtemp(prefix=A.ADD_ITEMS_WORK_PREFIX, dir=paths.home)
    try:
        size = reindex(
            weights_dir=os.path.join(_uri(nodes, P.TRAINER, P.MODEL_RUN), WEIGHTS_DIR),
            tft_output=tft_output,
            scan_ds=scan,
            catalog_dir=split_dir(_uri(nodes, P.CATALOG_GEN, P.EXAMPLES), P.CATALOG_SPLIT),
            new_items=table,
            out_catalog_dir=os.path.join(work, "catalog"),
            export_dir=os.path.join(work, "model"),
            item_text=item_text,
        )
        # A pipeline re-run that pushes the same model again keeps this version served.
        if pushed is not None:
            mark_extension(os.path.join(work, "model"), pushed, digest)
        target = atomic_copy(os.path.join(work, "model"), base, next_version(base))
        os.makedirs(os.path.dirname(record), exist_ok=True)
        items.to_csv(os.path.join(work, "added.csv"), index=False)
        os.replace(os.path.join(work, "added.csv"), record)  # whole, or the old one
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"catalogue now {size} items ({len(items)} added since the run); "
          f"pushed {shown_path(target)}")
    return target
