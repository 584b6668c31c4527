"""`mtrec compile`'s flags that compiled into a spec other than the one meant (a probe's
findings): refused in one `error:` line before TFX loads, or noted in one `note:` line.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import yaml

from mtrec.cli import main as cli_main
from mtrec.pipeline import configs, local_runner
from mtrec.pipeline import kubeflow_v2_runner as kfv2
from mtrec.pipeline.kubeflow_beam_args import with_default_runner
from tests.kubeflow_support import IMAGE, NO_TEXT, compile_spec, parse_compile, tasks_of

ROOT = Path(__file__).resolve().parents[1]
FLAGS = {
    "--image": IMAGE,
    "--pipeline-root": "gs://my-bucket/root",
    "--examples-root": "gs://my-bucket/ex",
    "--serving-model-dir": "gs://my-bucket/serving/mtrec",
}


def _argv(tmp_path: Path, *extra: str, **flags: str) -> list[str]:
    given = {**FLAGS, "--output": str(tmp_path / "spec.yaml"), **flags}
    return [*[x for item in given.items() for x in item], *NO_TEXT, *extra]


def _refused(tmp_path, capsys, monkeypatch, argv: list[str]) -> str:
    """The one `error:` line of `mtrec compile ARGV`, which writes nothing and stops
    before the settings (and TFX)."""
    def no_settings(args):
        raise AssertionError("the flags' checks must come before the settings (and TFX)")

    monkeypatch.setattr("mtrec.commands.compile.settings_from_args", no_settings)
    assert cli_main(["compile", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "spec.yaml").exists()
    return err


@pytest.mark.filterwarnings("ignore:'mtrec.pipeline.kubeflow_v2_runner' found in sys.modules")
def test_the_old_module_command_exits_2_with_the_new_command(monkeypatch, capsys):
    """`python -m mtrec.pipeline.kubeflow_v2_runner ...`, the documented command before
    `mtrec compile`, did nothing and exited 0."""
    monkeypatch.setattr(sys, "argv", ["kubeflow_v2_runner", "--image", IMAGE,
                                      "--pipeline_root=gs://b/r", "--disable_cache",
                                      "--output", "x.yaml", "--", "--runner=DataflowRunner"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("mtrec.pipeline.kubeflow_v2_runner", run_name="__main__")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert (f"`mtrec compile --image {IMAGE} --pipeline-root=gs://b/r --no-cache --output "
            "x.yaml -- --runner=DataflowRunner`") in err
    assert "--snake_case -> --kebab-case" in err


def test_the_submit_examples_keep_the_specs_caching_choice(tmp_path):
    """`enable_caching=True` at submission turned every task's cache on, over a spec
    compiled with --no-cache; None keeps each task's compiled choice (kfp.Client and
    aiplatform.PipelineJob override only when it is not None)."""
    from kfp.client.client import Client

    docs = (ROOT / "docs" / "kubeflow.md").read_text()
    assert "enable_caching=True" not in docs and docs.count("enable_caching=None,") == 2
    out = tmp_path / "spec.yaml"
    compile_spec(_argv(tmp_path, "--no-cache", "--no-baseline", **{"--output": str(out)}))

    def caching(enable_caching: bool | None) -> set[bool]:
        job = Client._create_job_config(None, params=None, pipeline_package_path=str(out),
                                        pipeline_id=None, version_id=None,
                                        enable_caching=enable_caching, pipeline_root=None)
        tasks = job.pipeline_spec["root"]["dag"]["tasks"].values()
        return {t.get("cachingOptions", {}).get("enableCache", False) for t in tasks}

    assert caching(None) == {False} and caching(True) == {True}


@pytest.mark.parametrize(("given", "expected"), [
    (None, kfv2.DEFAULT_BEAM_ARGS),
    ([], kfv2.DEFAULT_BEAM_ARGS),  # a bare trailing `--`
    (["--direct_num_workers=4"],
     ("--runner=FnApiRunner", "--direct_running_mode=multi_processing",
      "--direct_num_workers=4")),
    (["--direct_running_mode", "in_memory"],
     ("--runner=FnApiRunner", "--direct_num_workers=0", "--direct_running_mode", "in_memory")),
    (["--runner", "FlinkRunner", "--parallelism=8"], ("--runner", "FlinkRunner",
                                                      "--parallelism=8")),
])
def test_beam_args_without_a_runner_keep_the_in_pod_fnapirunner(given, expected):
    """They dropped it, and every pod's Beam fell back to the DirectRunner (Prism, a
    download from GitHub)."""
    assert with_default_runner(given, kfv2.DEFAULT_BEAM_ARGS) == expected


def test_compile_keeps_the_default_runner_after_a_bare_or_runnerless_double_dash():
    settings, _ = parse_compile([*_argv(Path("/tmp"))[:8], *NO_TEXT, "--",
                                 "--direct_num_workers=4"])
    args = settings.pipeline.beam_pipeline_args
    assert f"--runner={configs.LOCAL_RUNNER}" in args and args[-1] == "--direct_num_workers=4"
    settings, _ = parse_compile([*_argv(Path("/tmp"))[:8], *NO_TEXT, "--"])
    assert settings.pipeline.beam_pipeline_args == kfv2.DEFAULT_BEAM_ARGS


@pytest.mark.parametrize("beam", [["--no-baseline"], ["--runner=DataflowRunner", "--no_baseline"],
                                  ["--epochs=3"]])
def test_mtrecs_own_flags_after_the_double_dash_are_refused(tmp_path, capsys, monkeypatch, beam):
    """They went to Beam, which ignores what it does not know: the baseline compiled in."""
    name = beam[-1].split("=")[0]
    err = _refused(tmp_path, capsys, monkeypatch, [*_argv(tmp_path), "--", *beam])
    assert f"{name} after `--` is mtrec compile's " in err and "put it before `--`" in err
    assert ("own flag" in err) == ("_" not in name) and name.replace("_", "-") in err


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--examples-root", "gs://my-bucket/ex[1]", "holds [ ], which Beam and TFX read as"),
    ("--pipeline-root", "/runs/*/root", "holds *"),
    ("--serving-model-dir", "gs://my-bucket/serving?", "holds ?"),
    ("--pipeline-root", " gs://my-bucket/root", "starts or ends with whitespace"),
    ("--examples-root", "gs://my-bucket/ex\n", "starts or ends with whitespace"),
    ("--pipeline-name", "m" * 64, "at most 63 characters (TFX's limit; this one has 64)"),
    ("--serving-pvc", "Pusher_Base", "--serving-pvc 'Pusher_Base' is not a Kubernetes name"),
])
def test_paths_and_names_no_pod_could_use_are_refused(tmp_path, capsys, monkeypatch, flag,
                                                       value, says):
    extra = ["--no-baseline"] if flag == "--serving-pvc" else []
    err = _refused(tmp_path, capsys, monkeypatch, _argv(tmp_path, *extra, **{flag: value}))
    assert says in err and flag in err


def test_a_63_character_pipeline_name_compiles(tmp_path):
    """TFX refuses 64 (tfx.dsl.Pipeline); mtrec's check allowed 128, and the compile failed
    in a traceback."""
    settings, _ = parse_compile(_argv(tmp_path, **{"--pipeline-name": "m" * 63}))
    kfv2.compile_pipeline(settings, str(tmp_path / "spec.yaml"))


@pytest.mark.parametrize("flags", [["--serving-model-dir", "/models/mtrec",
                                    "--serving-pvc", "pusher"],
                                   ["--tfjob-namespace", "team"]])
def test_kubeflow_only_flags_need_no_baseline(tmp_path, capsys, monkeypatch, flags):
    """The KFP OSS backend rejects the resolver tasks (docs/kubeflow.md §5): it compiled."""
    err = _refused(tmp_path, capsys, monkeypatch, [*_argv(tmp_path), *flags])
    assert f"{flags[-2]} is for Kubeflow Pipelines" in err and "add --no-baseline" in err


@pytest.mark.parametrize(("flags", "says"), [
    (["--rating-rmse-max", "nan"], "--rating-rmse-max: a bound is a finite number, got nan"),
    (["--rating-rmse-max-increase", "inf"], "--rating-rmse-max-increase: a bound is a finite"),
    (["--relevance-auc-max-decrease", "nan"], "--relevance-auc-max-decrease: a bound is a fin"),
    (["--retrieval-thresholds", '{"ndcg@10_lift": NaN}'], "ndcg@10_lift's bound is a finite"),
    (["--retrieval-thresholds", '{"hit_rate@100": Infinity}'], "a finite number, got inf"),
    (["--retrieval-thresholds", '{"hit_rate@10": 5}'], "hit_rate@10 lies in [0, 1], got a bo"),
    (["--retrieval-thresholds", '{"recall@10": 1.5}'], "recall@10 lies in [0, 1]"),
    (["--retrieval-thresholds", '{"ndcg@10_change": 0.01}'], "a drop of at most 0.01 is -0.01"),
    (["--text-encoder", '{"batch_size": 1.5}'],
     "--text-encoder: 'batch_size' must be a whole number, got 1.5"),
])
@pytest.mark.parametrize("command", ["compile", "run"])
def test_bounds_no_model_meets_are_refused_by_compile_and_run(tmp_path, capsys, monkeypatch,
                                                              flags, says, command):
    """nan compared false with every metric, inf bounded nothing, HR@K 5 or a positive
    `_change` (meant as a drop) refused every model; 1.5 became 1."""
    if command == "run":
        monkeypatch.chdir(tmp_path)
        assert cli_main(["run", "--home", str(tmp_path / "h"), *flags]) == 2
        assert says in capsys.readouterr().err and not (tmp_path / "h").exists()
        return
    if flags[0] == "--text-encoder":  # not with --no-text-encoder, which leaves it out
        argv = [x for x in _argv(tmp_path) if x not in NO_TEXT]
    else:
        argv = _argv(tmp_path)
    assert says in _refused(tmp_path, capsys, monkeypatch, [*argv, *flags])


def test_the_pipeline_flags_meant_pass(tmp_path):
    settings, _ = parse_compile(_argv(tmp_path, "--retrieval-thresholds",
                                      '{"hit_rate@10": 1, "ndcg@10_change": 0, '
                                      '"ndcg@10_lift": 2.5}', "--text-encoder",
                                      '{"batch_size": 16.0}'))
    assert settings.pipeline.thresholds.retrieval["ndcg@10_lift"] == 2.5


def _notes(tmp_path, capsys, argv: list[str]) -> list[str]:
    compile_spec(argv)
    err = capsys.readouterr().err
    assert all(line.startswith("note: ") for line in err.splitlines()), err
    return err.splitlines()


def test_ignored_flags_and_pod_local_paths_get_one_note_each(tmp_path, capsys):
    """Each compiled without a word: the flag did nothing, or the path is in one pod."""
    argv = [*_argv(tmp_path, "--implicit-feedback", "--rating-rmse-max", "1.2",
                   "--no-baseline", "--retrieval-thresholds", '{"ndcg@10_change": -0.02}',
                   "--vertex-project", "proj", "--serving-pvc-mount", "/srv",
                   "--text-encoder", '{"batch_size": 8}',
                   **{"--pipeline-root": "/data/root", "--serving-model-dir": "/models/x",
                      "--schema-path": "/home/me/schema.pbtxt"})]
    notes = _notes(tmp_path, capsys, argv)
    expected = [
        "--pipeline-root '/data/root' is a local path: each pod writes its own filesystem",
        "--serving-model-dir '/models/x' is a local path without --serving-pvc",
        "--schema-path '/home/me/schema.pbtxt' is read in the pods: it must exist inside",
        "--text-encoder ignored: --no-text-encoder leaves the text encoder out",
        "--rating-rmse-max ignored: with --implicit-feedback TFMA bounds only",
        "--retrieval-thresholds ndcg@10_change ignored: --no-baseline compiles no model",
        "--vertex-project ignored",
        "--serving-pvc-mount ignored",
    ]
    assert len(notes) == len(expected), notes
    for note, says in zip(notes, expected, strict=True):
        assert says in note, (note, says)


def test_a_preset_dir_outside_the_image_gets_a_note(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(kfv2, "compile_pipeline", lambda settings, output: {})
    argv = [x for x in _argv(tmp_path) if x not in NO_TEXT]
    text = json.dumps({"mode": "preset", "preset_dir": "/home/me/bert"})
    (note,) = _notes(tmp_path, capsys, [*argv, "--text-encoder", text])
    assert "--text-encoder preset_dir '/home/me/bert' is read in the pods" in note


def test_the_tfjob_service_account_reaches_the_replicas(tmp_path):
    """The replicas ran as the namespace's `default` account, with no flag to change it."""
    settings, _ = parse_compile(_argv(tmp_path, "--tfjob-namespace", "team", "--no-baseline",
                                      "--tfjob-service-account", "mtrec-trainer"))
    assert settings.pipeline.tfjob_training.service_account == "mtrec-trainer"


def test_the_gs_defaults_compile_without_a_note(tmp_path, capsys):
    out = tmp_path / "spec.yaml"
    compile_spec(_argv(tmp_path, "--no-baseline"))
    assert capsys.readouterr().err == ""
    spec, *_ = yaml.safe_load_all(out.read_text())
    assert "Trainer" in tasks_of(spec)


def test_mtrec_run_notes_an_ignored_text_encoder_setting(tmp_path, capfd, monkeypatch):
    """As `mtrec compile` does: --text-encoder with --no-text-encoder did nothing silently."""
    def stop(*_args: object, **_kwargs: object) -> None:
        raise ValueError("stop here")

    monkeypatch.setattr(local_runner, "run", stop)
    cli_main(["run", "--home", str(tmp_path / "home"), "--no-text-encoder",
              "--text-encoder", '{"batch_size": 8}'])
    assert ("note: --text-encoder ignored: --no-text-encoder leaves the text encoder out"
            in capfd.readouterr().err.splitlines())
