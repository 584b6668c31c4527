"""Ingestion fits user and item attributes to the curated schema's bounds, with a note.

A birth year in users.csv's age column (1982), one typo (999) or an item with 40 genres
was read without a word, and ExampleValidator then stopped the whole run at the
AnomalyGate ("Out-of-range values", "Superfluous values"). Now such a value is unknown
(0) or cut to the schema's bound, and a note counts them (`mtrec data check`, the run's
ingest notes); the examples written validate against pipeline/schema/schema.pbtxt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_data_validation import validate_statistics
from tensorflow_data_validation.statistics.stats_impl import generate_statistics_in_memory
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

from mtrec.cli import main
from mtrec.contracts import features as F
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data import load_generic, load_ml1m, load_ml_latest_small
from mtrec.data.checks import fit_schema
from mtrec.data.tables import (
    Dataset,
    age_column,
    empty_malformed,
    first_genres,
    in_range,
    int_column,
    make_items,
    make_users,
)
from mtrec.ingest import ingest
from mtrec.pipeline.local_runner import curated_schema_path

GENRES_40 = "|".join(f"g{k}" for k in range(40))


def curated_schema() -> schema_pb2.Schema:
    return text_format.Parse(Path(curated_schema_path()).read_text(), schema_pb2.Schema())


def test_the_bounds_ingestion_fits_to_are_the_curated_schemas():
    """contracts/features.py restates the schema's numbers; a bound the schema gains or
    changes fails here until ingestion fits its values to it (data/checks.fit_schema)."""
    features = {f.name: f for f in curated_schema().feature}
    ints = {name: (f.int_domain.min, f.int_domain.max if f.int_domain.HasField("max")
                   else None) for name, f in features.items() if f.HasField("int_domain")}
    assert ints == {F.AGE: (0, F.MAX_AGE), F.YEAR: (0, F.MAX_YEAR), F.TIMESTAMP: (0, None)}
    floats = {name: (f.float_domain.min, f.float_domain.max, f.float_domain.disallow_nan)
              for name, f in features.items() if f.HasField("float_domain")}
    assert floats == {F.RATING: (F.MIN_RATING, F.MAX_RATING, True)}
    counts = {name: (f.value_count.min, f.value_count.max)
              for name, f in features.items() if f.HasField("value_count")}
    assert counts == {F.GENRES: (0, F.MAX_GENRES), F.HISTORY: (0, F.HISTORY_LEN)}
    domains = [name for name, f in features.items() if f.WhichOneof("domain_info")
               not in (None, "int_domain", "float_domain")]
    assert domains == []  # a string domain (gender, occupation) would need its own fit


def test_int_column_reads_a_number_past_int64_as_its_largest_not_a_negative():
    # It wrapped round to -2**63: "Unexpectedly small value" at the gate, and no note.
    values = pd.Series(["1e30", "99999999999999999999", "1982", "-3", "x", None])
    assert int_column(values, 6).tolist() == [2**63 - 1, 2**63 - 1, 1982, 0, 0, 0]
    assert int_column(pd.Series([10**400, 7], dtype=object), 2).tolist() == [2**63 - 1, 7]


def test_in_range_reads_values_past_the_maximum_as_unknown():
    ages = age_column(pd.Series(["1982", "999", "34", "25-34", "", "120", "121"]), 7)
    assert ages.tolist() == [1982, 999, 34, 25, 0, 120, 121]  # read; fit_schema bounds them
    fitted, over = in_range(ages, F.MAX_AGE)
    assert fitted.tolist() == [0, 0, 34, 25, 0, 120, 0]
    assert over.tolist() == [True, True, False, False, False, False, True]


def test_first_genres_cuts_long_lists_to_the_schemas_maximum():
    genres = pd.Series([[f"g{k}" for k in range(40)], ["A"], [], None,
                        np.array([f"g{k}" for k in range(33)])], dtype=object)
    cut, over = first_genres(genres)
    assert [len(g) for g in cut] == [F.MAX_GENRES, 1, 0, 0, F.MAX_GENRES]
    assert cut[0] == [f"g{k}" for k in range(F.MAX_GENRES)]  # the first, in order
    assert over.tolist() == [True, False, False, False, True]


def _dataset(ages: list[object], genres: list[list[str]], years: list[int]) -> Dataset:
    users = make_users(pd.Series([f"u{i}" for i in range(len(ages))]), pd.Series(ages))
    items = make_items(pd.Series([f"i{i}" for i in range(len(genres))]), None,
                       pd.Series(genres, dtype=object), None, pd.Series(years))
    return Dataset("shop", pd.DataFrame(), users, items, empty_malformed(), notes=("read",))


def test_fit_schema_counts_what_it_changed_in_notes():
    fitted = fit_schema(_dataset([1982, 1990, 999, 30], [list("ab")] * 2, [1995, 2101]))
    assert fitted.users[F.AGE].tolist() == [0, 0, 0, 30]
    assert fitted.items[F.YEAR].tolist() == [1995, 0]
    assert fitted.notes == (
        "read",
        "shop's users: 3 ages over 120 read as unknown (0); 2 of them look like birth "
        "years (1900-2030), but the age column holds ages in years",
        "shop's items: 1 release year after 2100 read as unknown (0)")
    one = fit_schema(_dataset([1982], [[f"g{k}" for k in range(40)]], [0]))
    assert one.notes[1:] == (
        "shop's users: 1 age over 120 read as unknown (0); it looks like a birth year "
        "(1900-2030), but the age column holds ages in years",
        "shop's items: 1 item with more than 32 genres (up to 40): each keeps its "
        "first 32")
    assert len(one.items[F.GENRES][0]) == F.MAX_GENRES
    assert fit_schema(_dataset([500, 130], [], [])).notes[1:] == (
        "shop's users: 2 ages over 120 read as unknown (0)",)
    within = _dataset([120, 0], [[f"g{k}" for k in range(32)]], [2100])
    assert fit_schema(within) is within  # nothing to fit: the same dataset


def test_the_movielens_loaders_fit_their_tables_too(tmp_path: Path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,29,4.0,1\n")
    (tmp_path / "movies.csv").write_text(f"movieId,title,genres\n29,Later (2150),{GENRES_40}\n")
    latest = load_ml_latest_small(tmp_path)
    assert latest.items[F.YEAR].tolist() == [0]
    assert latest.items[F.GENRES][0] == [f"g{k}" for k in range(F.MAX_GENRES)]
    assert latest.notes == (
        "ml-latest-small's items: 1 release year after 2100 read as unknown (0)",
        "ml-latest-small's items: 1 item with more than 32 genres (up to 40): each keeps "
        "its first 32")
    (tmp_path / "ratings.dat").write_text("1::10::5::978300760\n2::10::4::978302109\n")
    (tmp_path / "movies.dat").write_text("10::Heat (1995)::Action|Crime\n")
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::1971::16::70072\n")
    ml1m = load_ml1m(tmp_path)
    assert ml1m.users[F.AGE].tolist() == [1, 0]
    assert ml1m.notes == ("ml-1m's users: 1 age over 120 read as unknown (0); it looks like "
                          "a birth year (1900-2030), but the age column holds ages in years",)


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """The probe's folder: birth years and a typo as ages, an item with 40 genres, a
    release year after 2100 (in the title and in the year column)."""
    data = tmp_path / "in"
    data.mkdir()
    rows = [f"u{u},i{i},{1 + (u + i) % 5},{1000 + 10 * i}" for u in range(4) for i in range(4)]
    (data / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n"
                                      + "\n".join(rows) + "\n")
    (data / "users.csv").write_text("user_id,age,gender,occupation\n"
                                    "u0,1982,M,occ0\nu1,34,F,occ1\nu2,999,F,occ0\n"
                                    "u3,1e30,M,occ1\n")
    (data / "items.csv").write_text(f"item_id,title,genres,year\ni0,Zero,{GENRES_40},1995\n"
                                    "i1,One (2150),Drama,\ni2,Two,Comedy|Drama,20000\n"
                                    "i3,Three,Comedy,2001\n")
    return data


NOTES = (
    "users.csv (the first on line 2): 3 ages over 120 read as unknown (0); 1 of them "
    "looks like a birth year (1900-2030), but the age column holds ages in years",
    "items.csv (the first on line 3): 2 release years after 2100 read as unknown (0)",
    "items.csv (the first on line 2): 1 item with more than 32 genres (up to 40): each "
    "keeps its first 32",
)


def test_a_generic_folder_is_read_within_the_schemas_bounds(probe: Path):
    dataset = load_generic(probe)
    assert dataset.notes == NOTES
    assert dict(zip(dataset.users[F.USER_ID], dataset.users[F.AGE], strict=True)) == {
        "u0": 0, "u1": 34, "u2": 0, "u3": 0}
    assert dataset.items[F.YEAR].tolist() == [1995, 0, 0, 2001]
    assert dataset.items[F.GENRES][0] == [f"g{k}" for k in range(F.MAX_GENRES)]


def _read_split(split_dir: Path) -> pa.RecordBatch:
    records = [record.numpy() for file in sorted(split_dir.glob("*.tfrecord.gz"))
               for record in tf.data.TFRecordDataset(str(file), compression_type="GZIP")]
    assert records
    return ExamplesToRecordBatchDecoder().DecodeBatch(records)


def _anomalies(examples: pa.RecordBatch, schema: schema_pb2.Schema) -> dict[str, list[str]]:
    """ExampleValidator's check of one split: TFDV statistics of its examples, validated
    against the curated schema in the TRAINING environment."""
    found = validate_statistics(generate_statistics_in_memory(examples), schema,
                                environment="TRAINING")
    return {name: [reason.description for reason in info.reason]
            for name, info in found.anomaly_info.items()}


def test_the_examples_ingested_validate_against_the_curated_schema(
        probe: Path, tmp_path: Path, capsys):
    result = ingest("generic", str(probe), str(tmp_path / "home"))
    assert result.notes == NOTES  # what the run's summary and report show
    schema, longest = curated_schema(), {}
    for split in (TRAIN_SPLIT, EVAL_SPLIT):
        examples = _read_split(Path(result.examples_root) / split)
        assert _anomalies(examples, schema) == {}, split
        # Also by hand: an int64 near 2**63 (1e30 read so) defeats TFDV's int_domain check,
        # which then let the 1982 and 999 beside it through as well.
        values = {name: examples.column(examples.schema.get_field_index(name)).to_pylist()
                  for name in (F.AGE, F.YEAR, F.GENRES)}
        assert max(age for (age,) in values[F.AGE]) <= F.MAX_AGE
        assert max(year for (year,) in values[F.YEAR]) <= F.MAX_YEAR
        longest[split] = max(len(genres) for genres in values[F.GENRES])
    assert longest == {TRAIN_SPLIT: F.MAX_GENRES, EVAL_SPLIT: 1}  # eval: i3, rated last
    assert main(["data", "check", "--source", "generic", "--path", str(probe),
                 "--rejects", str(tmp_path / "rejects.csv")]) == 0
    out = capsys.readouterr().out
    for note in NOTES:
        assert f"note: {note}" in out
