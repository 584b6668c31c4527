"""LinkedImportExampleGen: same splits and records as the stock component, in input order,
the files linked where they can be and written by Beam where not."""

from __future__ import annotations

import gzip
import json
import os

import pytest
import tensorflow as tf
from tfx.components.example_gen.import_example_gen import executor as stock
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from mtrec.components.example_gen.component import LinkedImportExampleGen
from mtrec.components.example_gen.executor import Executor, link_plan
from mtrec.contracts.artifacts import INGEST_REPORT_FILE
from mtrec.contracts.pipeline import SPLIT_PROTOCOL
from mtrec.data.artifact_io import read_files
from mtrec.data.splits import RANDOM_PROTOCOL, UNKNOWN_PROTOCOL


def _write(path: str, rows: list[bytes]) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
        for row in rows:
            writer.write(row)


def _example(i: int) -> bytes:
    feature = {"user_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"u%d" % i]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


class _Written(Executor):
    LINK = False


def _run(executor, input_base: str, out: str, inputs: tuple[str, ...] = ("train", "eval"),
         output: example_gen_pb2.Output | None = None
         ) -> tuple[dict[str, list[bytes]], str | None]:
    """(the records of each split, the artifact's split protocol or None)."""
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=s, pattern=f"{s}/*") for s in inputs]
    )
    output = output or example_gen_pb2.Output()
    examples = standard_artifacts.Examples()
    examples.uri = out
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: input_base,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    executor.Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    names = artifact_utils.decode_split_names(examples.split_names)
    assert names == ([s.name for s in output.split_config.splits] or list(inputs))
    assert examples_utils.get_payload_format(examples) == example_gen_pb2.FORMAT_TF_EXAMPLE
    records = {}
    for split in names:
        files = sorted(tf.io.gfile.glob(os.path.join(out, f"Split-{split}", "*")))
        records[split] = [r.numpy() for r in read_files(files)]
    protocol = (examples.get_string_custom_property(SPLIT_PROTOCOL)
                if examples.has_custom_property(SPLIT_PROTOCOL) else None)
    return records, protocol


def test_links_the_stock_splits_and_records_in_input_order(tmp_path):
    rows = {"train": [_example(i) for i in range(300)], "eval": [_example(i) for i in range(7)]}
    for split, split_rows in rows.items():
        _write(str(tmp_path / "in" / split / "part-00000-of-00002.tfrecord.gz"), split_rows[::2])
        _write(str(tmp_path / "in" / split / "part-00001-of-00002.tfrecord.gz"), split_rows[1::2])
    ours, protocol = _run(Executor(), str(tmp_path / "in"), str(tmp_path / "ours"))
    written, _ = _run(_Written(), str(tmp_path / "in"), str(tmp_path / "written"))
    theirs, _ = _run(stock.Executor(), str(tmp_path / "in"), str(tmp_path / "stock"))
    # The same records (Beam may read the files in another order).
    assert {k: sorted(v) for k, v in ours.items()} == {k: sorted(v) for k, v in written.items()}
    for split, split_rows in rows.items():
        # No shuffle: the input's (already random) order, file by file.
        assert ours[split] == split_rows[::2] + split_rows[1::2]
        assert sorted(theirs[split]) == sorted(split_rows)
        for name in ("part-00000-of-00002.tfrecord.gz", "part-00001-of-00002.tfrecord.gz"):
            linked = tmp_path / "ours" / f"Split-{split}" / name
            assert linked.stat().st_ino == (tmp_path / "in" / split / name).stat().st_ino
    assert protocol == UNKNOWN_PROTOCOL  # no ingest report beside these splits


def test_the_catalogue_s_one_bucket_output_is_linked_too(tmp_path):
    _write(str(tmp_path / "in" / "catalog" / "part.tfrecord.gz"), [_example(i) for i in range(5)])
    one_bucket = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name="catalog", hash_buckets=1)]))
    ours, _ = _run(Executor(), str(tmp_path / "in"), str(tmp_path / "out"), ("catalog",),
                   one_bucket)
    assert ours["catalog"] == [_example(i) for i in range(5)]
    assert (tmp_path / "out" / "Split-catalog" / "part.tfrecord.gz").stat().st_nlink == 2


def test_files_that_cannot_be_linked_are_written_by_beam_in_input_order(tmp_path):
    """Uncompressed TFRecords (readers here expect gzip), and one input hashed into two."""
    rows = [_example(i) for i in range(40)]
    (tmp_path / "in" / "train").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(tmp_path / "in" / "train" / "plain.tfrecord")) as w:
        for row in rows:
            w.write(row)
    _write(str(tmp_path / "in" / "eval" / "data.tfrecord.gz"), rows[:3])
    ours, _ = _run(Executor(), str(tmp_path / "in"), str(tmp_path / "plain"))
    assert ours == {"train": rows, "eval": rows[:3]}
    assert [p.name for p in (tmp_path / "plain" / "Split-eval").iterdir()] == [
        "data_tfrecord-00000-of-00001.gz"]  # one split Beam must write: all are written
    two = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name="a", hash_buckets=1),
        example_gen_pb2.SplitConfig.Split(name="b", hash_buckets=1)]))
    hashed, _ = _run(Executor(), str(tmp_path / "in"), str(tmp_path / "hashed"), ("eval",), two)
    assert sorted(hashed["a"] + hashed["b"]) == sorted(rows[:3])


def test_only_gzipped_tf_example_records_count_as_linkable(tmp_path):
    _write(str(tmp_path / "ok.gz"), [_example(0)])
    (tmp_path / "empty.gz").write_bytes(b"")
    _write(str(tmp_path / "no_records.gz"), [])  # a shard that got no rows
    with gzip.open(tmp_path / "text.gz", "wb") as f:
        f.write(b"user,item\n")  # gzip, but not TFRecords
    _write(str(tmp_path / "not_examples.gz"), [b"\xff\xff not a proto"])
    (tmp_path / "folder.gz").mkdir()

    def linkable(name: str) -> bool:
        splits = [example_gen_pb2.Input.Split(name="train", pattern=name)]
        plan = link_plan(str(tmp_path), example_gen_pb2.Input(splits=splits),
                         example_gen_pb2.Output())
        return plan is not None

    names = ("ok.gz", "empty.gz", "no_records.gz", "text.gz", "not_examples.gz", "folder.gz")
    assert [linkable(n) for n in names] == [True, True, True, False, False, False]
    with pytest.raises(ValueError, match="no input files match"):
        link_plan(str(tmp_path), example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="train", pattern="missing/*")]),
            example_gen_pb2.Output())


def test_a_url_filesystem_gets_copies(tmp_path):
    base = f"ram://{tmp_path.name}-linked"
    _write(f"{base}/in/train/part.tfrecord.gz", [_example(1), _example(2)])
    _write(f"{base}/in/eval/part.tfrecord.gz", [_example(3)])
    ours, _ = _run(Executor(), f"{base}/in", f"{base}/out")
    assert ours == {"train": [_example(1), _example(2)], "eval": [_example(3)]}
    assert tf.io.gfile.exists(f"{base}/out/Split-train/part.tfrecord.gz")


def test_records_the_split_protocol_that_ingestion_wrote(tmp_path):
    _write(str(tmp_path / "in" / "train" / "data.tfrecord.gz"), [_example(0), _example(1)])
    _write(str(tmp_path / "in" / "eval" / "data.tfrecord.gz"), [_example(2)])
    (tmp_path / "in" / INGEST_REPORT_FILE).write_text(
        json.dumps({"split_protocol": RANDOM_PROTOCOL}))
    _, protocol = _run(Executor(), str(tmp_path / "in"), str(tmp_path / "out"))
    assert protocol == RANDOM_PROTOCOL


def test_component_is_the_stock_import_example_gen_with_our_executor():
    component = LinkedImportExampleGen(input_base="/data")
    assert component.executor_spec.executor_class is Executor
    assert "examples" in component.outputs
