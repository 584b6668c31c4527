"""One CLI: every command under `mtrec`, one flag style, one settings object.

Parsing only (no pipeline runs): `mtrec run` and `mtrec compile` must turn the
same flags into the same PipelineSettings fields, and `mtrec data check`
must report rejects in seconds.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mtrec import cli as cli_module
from mtrec.cli import build_parser, main
from mtrec.commands.compile import settings_from_args
from mtrec.commands.options import pipeline_fields
from mtrec.models.config import ModelConfig
from mtrec.pipeline import configs
from mtrec.pipeline.mlmd_store import open_store
from mtrec.pipeline.settings import Thresholds

COMMANDS = ("run", "compile", "data", "report", "serve", "query", "download", "add-items",
            "prune")
SHARED = ["--model-config", '{"embedding_dim": 32}', "--epochs", "3",
          "--text-encoder", '{"pretrain_steps": 10}', "--rating-rmse-max", "1.2",
          "--rating-rmse-max-increase", "0.1", "--relevance-auc-min", "0.6",
          "--relevance-auc-max-decrease", "0.02",
          "--retrieval-thresholds", '{"hit_rate@50": 0.1}', "--no-cache"]
COMPILE = ["compile", "--image", "img", "--pipeline-root", "gs://b/r",
           "--examples-root", "gs://b/e", "--serving-model-dir", "gs://b/s"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_help_lists_every_command_and_each_has_an_example():
    parser = build_parser()
    commands = _subparsers(parser)
    assert set(COMMANDS) <= set(commands)
    top = parser.format_help()
    for name in COMMANDS:
        assert re.search(rf"^\s*{name}\b", top, re.M), name
    helps = {name: p.format_help() for name, p in commands.items()}
    helps["data check"] = _subparsers(commands["data"])["check"].format_help()
    for name, text in helps.items():
        assert "example" in text and "mtrec " in text.split("example", 1)[1], name


def _all_parsers(parser: argparse.ArgumentParser,
                 name: str = "mtrec") -> dict[str, argparse.ArgumentParser]:
    """`parser` and every (nested) subcommand's parser, by command line: "mtrec data check"."""
    found = {name: parser}
    if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
        for sub_name, sub in _subparsers(parser).items():
            found.update(_all_parsers(sub, f"{name} {sub_name}"))
    return found


def test_every_help_describes_the_command_for_its_user():
    """`mtrec --help` and `mtrec compile --help` printed their module docstrings: notes for
    developers ("imports inside handlers", "(options.py)")."""
    for name, parser in _all_parsers(build_parser()).items():
        text = parser.description or ""
        assert text.strip(), name
        for note in (".py", "import", "handler", f"`{name}"):
            assert note not in text, (name, note)
        assert max(map(len, text.splitlines())) <= 90, name  # raw text: wrapped by hand


def test_the_cli_starts_without_tensorflow_or_tfx():
    """`mtrec --help` and the commands' checks answer in under a second: a home's paths
    (pipeline/home_paths.py) and `mtrec prune` load neither (prune's import of the local
    runner's paths took `mtrec --help` from 0.8 s to 11 s)."""
    code = "import sys, mtrec.cli; print(sorted({'tensorflow', 'tfx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_every_flag_has_help(capsys):
    """`--schema-path`, `--pipeline-name`, `query recommend --user`, ... showed no help."""
    missing = [f"{name} {a.option_strings[0]}"
               for name, parser in _all_parsers(build_parser()).items()
               for a in parser._actions
               if a.option_strings and a.option_strings[0] != "-h" and not a.help]
    assert not missing
    with pytest.raises(SystemExit):  # download's own parser: its --help, parsed
        main(["download", "--help"])
    options = capsys.readouterr().out.split("options:\n", 1)[1].split("\n\n", 1)[0]
    lines = options.splitlines()
    for i, line in enumerate(lines):  # a flag's help follows it, or starts the next line
        if line.lstrip().startswith("-") and "  " not in line.strip():
            assert i + 1 < len(lines) and not lines[i + 1].lstrip().startswith("-"), line


def test_the_query_help_example_asks_for_a_user_of_the_sample():
    """`mtrec query --help` showed `--user 42`, which the sample's model answers as unknown."""
    text = _subparsers(build_parser())["query"].format_help()
    assert text.rstrip().endswith("mtrec query recommend --user u1 -k 10 --target 127.0.0.1:8500")


def test_no_flag_uses_underscores():
    commands = _subparsers(build_parser())
    flags = {opt for p in commands.values() for a in p._actions for opt in a.option_strings}
    assert flags and not [f for f in flags if "_" in f]


def test_run_and_compile_turn_the_same_flags_into_the_same_settings():
    parser = build_parser()
    run = parser.parse_args(["run", *SHARED])
    compiled = parser.parse_args([*COMPILE, *SHARED])
    compiled.beam_args = None
    run_fields = pipeline_fields(run, dict(run.model_config))
    pipeline = settings_from_args(compiled).pipeline
    for name, value in run_fields.items():
        assert getattr(pipeline, name) == value, name
    assert pipeline.model == {"embedding_dim": 32, "epochs": 3}
    assert pipeline.thresholds == Thresholds(
        rating_rmse_max=1.2, rating_rmse_max_increase=0.1, relevance_auc_min=0.6,
        relevance_auc_max_decrease=0.02, retrieval={"hit_rate@50": 0.1})
    assert pipeline.text_encoder == {"pretrain_steps": 10} and not pipeline.enable_cache


def test_compile_takes_implicit_feedback_as_a_flag():
    """`mtrec run` reads it from the data; a compiled pipeline has none to read."""
    parser = build_parser()
    for flags, labels in (([], True), (["--implicit-feedback"], False)):
        compiled = parser.parse_args([*COMPILE, *flags])
        compiled.beam_args = None
        assert settings_from_args(compiled).pipeline.thresholds.rating_labels is labels


def test_run_defaults_are_the_settings_defaults():
    args = build_parser().parse_args(["run"])
    fields = pipeline_fields(args, {})
    assert fields == {"model": {}, "text_encoder": {}, "thresholds": Thresholds(),
                      "enable_cache": True}
    assert Thresholds().retrieval == configs.RETRIEVAL_THRESHOLDS
    assert Thresholds().rating_rmse_max == configs.RATING_RMSE_MAX
    assert build_parser().parse_args(["run", "--no-text-encoder"]).no_text_encoder


def test_bad_json_flag_is_a_clear_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "--model-config", "[1]"])
    assert exit_.value.code == 2
    assert "expected a JSON object" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--epochs", "-1"],
                                   ["--model-config", '{"batch_size": 0}']])
def test_bad_model_values_stop_run_before_any_work(flags, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", *flags]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "outputs").exists()  # nothing ingested, no home made


@pytest.mark.parametrize("flags,says", [
    (["--retrieval-thresholds", '{"foo": 1}'], "--retrieval-thresholds: unknown metric(s) ['foo']"),
    (["--text-encoder", '{"mode": "nope"}'], "--text-encoder: mode must be one of"),
    (["--text-encoder", '{"sequence_length": "x"}'], "sequence_length must be int, got 'x'"),
    (["--text-encoder", '{"layers": 2}'], "--text-encoder: unknown settings ['layers']"),
    (["--path", "somewhere"], "source 'sample' is built in and reads no --path (somewhere)"),
    (["--pseudonymize-key-env", "MTREC_TEST_UNSET"], "env MTREC_TEST_UNSET is not set"),
    (["--rejects-keep-raw-ids"], "only applies with --pseudonymize-key-env"),
    (["--relevance-auc-min", "60"], "--relevance-auc-min: an AUC lies in [0, 1], got 60.0"),
    (["--rating-rmse-max", "0"], "--rating-rmse-max: an RMSE bound must be above 0, got 0.0"),
    (["--relevance-auc-max-decrease", "-0.01"],
     "--relevance-auc-max-decrease: a change bound is a size (>= 0), got -0.01"),
    (["--rating-rmse-max-increase", "-0.01"],
     "--rating-rmse-max-increase: a change bound is a size (>= 0), got -0.01"),
])
def test_bad_run_flags_stop_before_any_work(flags, says, tmp_path: Path, monkeypatch, capsys):
    """What the pipeline definition (or ingestion) would refuse after minutes, refused at once;
    `--path` without `--source` once trained on the sample."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MTREC_TEST_UNSET", raising=False)
    assert main(["run", *flags]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("flags,says", [
    (["--relevance-auc-min", "60"], "--relevance-auc-min: an AUC lies in [0, 1], got 60.0"),
    (["--relevance-auc-max-decrease", "-0.01"], "a change bound is a size (>= 0)"),
    (["--retrieval-thresholds", '{"foo": 1}'], "--retrieval-thresholds: unknown metric(s)"),
    (["--retrieval-thresholds", '{"ndcg@10": "x"}'],
     "--retrieval-thresholds: a bound is a number, got {'ndcg@10': 'x'}"),
    (["--model-config", '{"embedding_dim": "abc"}'],
     "model config 'embedding_dim' must be a whole number, got 'abc'"),
])
def test_compile_checks_the_pipeline_flags_as_run_does(flags, says, tmp_path: Path, capsys):
    """The same flags build the same settings (above), so they get the same checks: a bound
    no model can meet is refused, not compiled into a spec that never pushes."""
    out = tmp_path / "mtrec.yaml"
    assert main(["compile", "--image", "img", "--pipeline-root", "gs://bucket/root",
                 "--examples-root", "gs://bucket/examples", "--serving-model-dir",
                 "gs://bucket/serving", "--output", str(out), *flags]) == 2
    assert says in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("command,flags,says", [
    ("run", ["--workers", "0"], "--workers: 0: must be 1 or more"),
    ("run", ["--workers", "two"], "--workers: 'two' is not a whole number"),
    ("run", ["--max-reject-fraction", "2"], "fraction: 2.0: a fraction is from 0 to 1"),
    ("run", ["--eval-fraction", "0"], "--eval-fraction: 0.0: must be above 0 and below 1"),
    ("run", ["--eval-fraction", "1.5"], "--eval-fraction: 1.5: must be above 0 and below 1"),
    ("run", ["--keep-runs", "0"], "--keep-runs: 0: must be 1 or more"),
    ("data check", ["--eval-fraction", "1"], "--eval-fraction: 1.0: must be above 0 and below 1"),
    ("data check", ["--max-reject-fraction", "-0.1"], "-0.1: a fraction is from 0 to 1"),
])
def test_out_of_range_counts_and_fractions_are_usage_errors(command, flags, says, tmp_path: Path,
                                                            monkeypatch, capsys):
    """`--workers 0` and `--max-reject-fraction 2` were taken as given."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), *flags])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "outputs").exists()


def test_a_home_that_is_a_file_is_a_one_line_error(tmp_path: Path, capsys):
    """It was FileExistsError's traceback, from writing rejects.csv under it."""
    home = tmp_path / "notes.txt"
    home.write_text("x")
    assert main(["run", "--home", str(home)]) == 2
    assert capsys.readouterr().err == (
        f"error: --home {home} is a file: the run's output folder must be a folder "
        "(a new path makes one)\n")


@pytest.mark.parametrize("folder", ["runs [v2]", "runs*", "what?"])
def test_a_home_with_file_pattern_characters_is_refused_before_writing(
        tmp_path: Path, capsys, folder: str):
    """TFX and Beam read their inputs by file pattern: a sample run under "runs [v2]"
    wrote its examples, then failed in its first component ("No files found based on
    the file pattern .../runs [v2]/examples/.../catalog/*")."""
    home = tmp_path / folder / "sample"
    assert main(["run", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --home {home} holds ") and "file-pattern characters" in err
    assert not (tmp_path / folder).exists()


def test_a_home_whose_metadata_was_removed_is_refused_before_it_is_overwritten(
        tmp_path: Path, capsys):
    """A new store numbers executions from 1 again: the run wrote over earlier runs'
    artifacts and failed with "AlreadyExistsError: file already exists"."""
    schema = tmp_path / "home" / "pipeline_root" / "CuratedSchemaGen" / "schema" / "2"
    schema.mkdir(parents=True)
    (schema / "schema.pbtxt").write_text("kept")
    assert main(["run", "--home", str(tmp_path / "home")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'home'} holds earlier runs' artifacts")
    assert "no metadata.sqlite" in err and "new --home" in err
    assert (schema / "schema.pbtxt").read_text() == "kept"
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["pipeline_root"]  # nothing written


def test_a_run_that_fails_before_any_component_says_so_without_a_summary(
        tmp_path: Path, monkeypatch, capfd):
    """No MLMD yet: no summary to collect (it raised a second traceback about sqlite)."""
    from mtrec.pipeline import local_runner

    def fails(*_args, **_kwargs):
        raise ValueError("definition failed")

    monkeypatch.setattr(local_runner, "run", fails)
    assert main(["run", "--home", str(tmp_path / "home"), "--no-text-encoder"]) == 1
    err = capfd.readouterr().err
    assert "pipeline failed: the pipeline failed with ValueError" in err
    assert "Traceback" not in err and "sqlite" not in err
    assert (tmp_path / "home" / "logs" / "run.log").exists()


def _run_settings(tmp_path: Path, monkeypatch, capfd, rows: list[str],
                  items: str | None = None, *flags: str):
    """The pipeline settings `mtrec run` builds from a generic log, stopped before it runs."""
    from mtrec.pipeline import local_runner

    seen = []

    def stop(_paths, settings, **_kwargs):
        seen.append(settings)
        raise ValueError("stop here")

    data = tmp_path / "in"
    data.mkdir()
    (data / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows))
    if items is not None:
        (data / "items.csv").write_text(items)
    monkeypatch.setattr(local_runner, "run", stop)
    assert main(["run", "--source", "generic", "--path", str(data), "--home",
                 str(tmp_path / "home"), *flags]) == 1
    capfd.readouterr()
    return seen[0]


@pytest.mark.parametrize("ratings, labels, likes", [
    ((1, 1, 1), False, False), ((1, 4, 5), True, True), ((4, 5, 4), True, False)])
def test_run_drops_tfma_label_bounds_for_one_rating_value(
        ratings, labels, likes, tmp_path: Path, monkeypatch, capfd):
    """Implicit feedback (one rating value) runs without TFMA's rating and like bounds, and
    an eval split of only likes (4s and 5s) without the AUC's: `mtrec run` decides it from
    the ingested data (Thresholds.for_ingest_report)."""
    rows = [f"u{u},i{i},{ratings[(u + i) % 3]},{100 * u + i}" for u in range(6) for i in range(5)]
    settings = _run_settings(tmp_path, monkeypatch, capfd, rows, None, "--no-text-encoder")
    assert settings.thresholds.rating_labels is labels
    assert settings.thresholds.like_labels is likes


@pytest.mark.parametrize("items, encoder, interest", [
    ("item_id,title,year\ni0,,\ni1,,0\n", False, False),
    ("item_id,title\ni0,\ni1,Heat\n", True, False),
    ("item_id,genres\ni0,\ni1,Drama\n", True, False),  # the encoder reads "| drama | |";
    ("item_id,genres\ni0,Crime\ni1,Drama\n", True, True),  # one genre: nothing to rank
])
def test_run_leaves_out_the_text_encoder_and_interest_task_without_their_inputs(
        items, encoder, interest, tmp_path: Path, monkeypatch, capfd):
    """An ids-only log ran MiniLM over 1,682 empty strings (one vector for every item),
    and trained the interest head on labels that were all 0."""
    rows = [f"u{u},i{i % 2},{1 + (u + i) % 5},{100 * u + i}" for u in range(6) for i in range(2)]
    settings = _run_settings(tmp_path, monkeypatch, capfd, rows, items)
    assert (settings.text_encoder is not None) is encoder
    assert ("interest" in ModelConfig.from_dict(dict(settings.model)).tasks) is interest


@pytest.mark.parametrize("argv", [["report", "{home}"], ["prune", "{home}"],
                                  ["add-items", "--home", "{home}", "--items", "{items}"]])
def test_a_folder_that_is_no_run_home_is_a_one_line_error(argv, tmp_path: Path, capsys):
    items = tmp_path / "new.csv"
    items.write_text("item_id,title\nx1,A New Film\n")
    argv = [a.format(home=tmp_path / "nowhere", items=items) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'nowhere'}: no such folder\n"
    (tmp_path / "nowhere").write_text("a file")
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'nowhere'}: is a file, not an `mtrec run` output folder\n")
    (tmp_path / "nowhere").unlink()
    (tmp_path / "nowhere").mkdir()
    assert main(argv) == 2
    assert "no metadata.sqlite" in capsys.readouterr().err


def _empty_store(home: Path) -> None:
    """An MLMD store that recorded no run (an empty file is refused: test_mlmd_store.py)."""
    (home / "metadata.sqlite").touch()
    open_store(str(home / "metadata.sqlite"), writable=True)


def test_prune_of_a_home_without_runs_frees_nothing(tmp_path: Path, capsys):
    _empty_store(tmp_path)
    assert main(["prune", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "nothing to free: 0 run(s), each kept or already pruned\n"


def test_add_items_names_a_missing_items_file(tmp_path: Path, capsys):
    _empty_store(tmp_path)
    assert main(["add-items", "--home", str(tmp_path), "--items", "missing.csv"]) == 2
    assert capsys.readouterr().err == "error: missing.csv: no such file\n"


@pytest.mark.parametrize("kind", ["empty", "folder"])
def test_add_items_names_an_items_path_that_is_no_csv(kind, tmp_path: Path, capsys):
    """An empty --items file said pandas' "No columns to parse from file", naming no file;
    a folder said "no such file"."""
    _empty_store(tmp_path)
    items = tmp_path / "items"
    items.mkdir() if kind == "folder" else items.write_text("")
    assert main(["add-items", "--home", str(tmp_path), "--items", str(items)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {items}: ") and err.count("\n") == 1
    assert ("is a folder" if kind == "folder" else "empty file") in err
    assert not (tmp_path / "serving_model").exists()  # nothing pushed


def test_download_has_its_own_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["download", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mtrec download") and "--local-dir" in out and "example" in out


def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path, monkeypatch, capsys):
    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "_run", interrupted)
    assert main(["run", "--home", str(tmp_path)]) == 130
    assert capsys.readouterr().err == (
        "\ninterrupted (run it again to resume: finished components come from the cache, "
        "unless mtrec's code changed since the last finished run)\n")
