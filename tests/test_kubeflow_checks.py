"""`mtrec compile`'s flag checks (pipeline/kubeflow_checks.py): one line, before TFX compiles.

Each of these compiled before, into a spec no cluster could run: an empty
--image became TFX's public image (without mtrec), any pipeline root or
--output went through (`x.txt` got the JSON job), and an unwritable output
or a bad pipeline name ended in a traceback (TFX's message prints `%`).
"""

from __future__ import annotations

import pytest

from mtrec.cli import main as cli_main
from mtrec.pipeline import kubeflow_checks as checks
from mtrec.pipeline.kubeflow_beam_args import beam_notes
from tests.kubeflow_support import IMAGE, NO_TEXT

FLAGS = {
    "--image": IMAGE,
    "--pipeline-root": "gs://bucket/root",
    "--examples-root": "gs://bucket/examples",
    "--serving-model-dir": "gs://bucket/serving",
}


def _compile(tmp_path, **overrides: str) -> list[str]:
    flags = {**FLAGS, "--output": str(tmp_path / "spec.yaml"), **overrides}
    return ["compile", *[x for item in flags.items() for x in item], *NO_TEXT]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--image", "", "not a container image reference"),
        ("--image", "my image", "not a container image reference"),
        ("--image", "Europe-docker.pkg.dev/p/Repo/mtrec:1", "not a container image reference"),
        ("--pipeline-root", "gs://", "'' is not a Cloud Storage bucket name"),
        ("--pipeline-root", "gs:/bucket/root", "is not a URI: write gs://"),
        ("--pipeline-root", "gs://My_Bucket/root", "'My_Bucket' is not a Cloud Storage bucket"),
        # GCS caps a name without dots at 63 characters (222 only with dots).
        ("--pipeline-root", f"gs://{'b' * 64}/root", "is not a Cloud Storage bucket name"),
        ("--pipeline-root", f"gs://{'b' * 64}.x/root", "is not a Cloud Storage bucket name"),
        ("--pipeline-root", "gs://a..b/root", "is not a Cloud Storage bucket name"),
        # tf.io.gfile has no GS:// filesystem; this compiled before.
        ("--pipeline-root", "GS://bucket/root", "write the scheme in lowercase (gs://)"),
        ("--examples-root", "gcs://bucket/examples", "Cloud Storage is gs://"),
        ("--pipeline-root", "minio://mlpipeline/root", "no minio://"),
        ("--serving-model-dir", " ", "--serving-model-dir is empty"),
        ("--pipeline-name", "My Pipeline", "KFP/Vertex pipeline names are lowercase"),
        ("--output", "spec.txt", "must end in .yaml"),
        ("--output", "gs://bucket/spec.yaml", "write the spec here, then copy it"),
    ],
)
def test_a_bad_flag_is_one_line_and_writes_nothing(tmp_path, capsys, flag, value, message):
    if flag == "--output" and "://" not in value:
        value = str(tmp_path / value)  # not into the cwd, should the check fail
    assert cli_main(_compile(tmp_path, **{flag: value})) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


def test_the_bucket_hint_does_not_look_like_the_refused_input(tmp_path, capsys):
    """`gs://BUCKET/...` was refused with the hint "(gs://BUCKET/PATH; ...)"."""
    assert cli_main(_compile(tmp_path, **{"--pipeline-root": "gs://BUCKET/root"})) == 2
    err = capsys.readouterr().err
    assert "'BUCKET' is not a Cloud Storage bucket name" in err
    assert "BUCKET/PATH" not in err and "e.g. gs://my-bucket/path" in err


def test_bucket_name_lengths_follow_cloud_storage():
    checks.check_storage_path("--pipeline-root", f"gs://{'b' * 63}/root")
    dotted = ".".join(["b" * 63] * 3) + ".c" * 13  # 217 characters, 63 between dots
    checks.check_storage_path("--pipeline-root", f"gs://{dotted}/root")
    with pytest.raises(ValueError, match="not a Cloud Storage bucket name"):
        checks.check_storage_path("--pipeline-root", f"gs://{dotted}.cccccc/root")  # 224


# Each of these compiled (quantities, namespace, mirrored on several replicas) or was
# refused only after ~25 s of imports, in dataclass terms ("VertexTraining needs the
# GCP project", "choose vertex_training or tfjob_training", "replicas must be >= 1").
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"--vertex-training-region": "europe-west4"},
         "--vertex-training-region needs --vertex-project"),
        ({"--vertex-training-region": "r", "--vertex-project": "p", "--tfjob-namespace": "ns"},
         "--vertex-training-region and --tfjob-namespace both choose"),
        ({"--tfjob-namespace": "ns", "--tfjob-replicas": "0"}, "--tfjob-replicas 0: at least 1"),
        ({"--vertex-training-region": "r", "--vertex-project": "p",
          "--vertex-training-replicas": "-1"}, "--vertex-training-replicas -1: at least 1"),
        ({"--tfjob-namespace": "ns", "--tfjob-cpu": "abc"},
         "--tfjob-cpu 'abc' is not a Kubernetes quantity"),
        ({"--tfjob-namespace": "ns", "--tfjob-cpu": "0"}, "--tfjob-cpu '0': must be more than 0"),
        ({"--tfjob-namespace": "ns", "--tfjob-cpu": "4Gi"}, "is not a Kubernetes quantity"),
        ({"--tfjob-namespace": "ns", "--tfjob-memory": "lots"},
         "--tfjob-memory 'lots' is not a Kubernetes quantity"),
        ({"--tfjob-namespace": "ns", "--tfjob-memory": "512m"}, "m is milli"),
        ({"--tfjob-namespace": "Team_A"}, "--tfjob-namespace 'Team_A' is not a Kubernetes "
         "namespace name"),
        ({"--tfjob-namespace": "n" * 64}, "is not a Kubernetes namespace name"),
        ({"--tfjob-namespace": ""}, "is not a Kubernetes namespace name"),
        ({"--vertex-training-region": "", "--vertex-project": "p"},
         "--vertex-training-region is empty"),
        # Under MirroredStrategy every replica is its own chief: N trainings, N exports.
        ({"--distribution": "mirrored", "--tfjob-namespace": "ns", "--tfjob-replicas": "4"},
         "--distribution mirrored with --tfjob-replicas 4: every replica would train alone"),
        ({"--distribution": "mirrored", "--vertex-training-region": "r", "--vertex-project": "p",
          "--vertex-training-replicas": "4"},
         "--distribution mirrored with --vertex-training-replicas 4"),
    ],
)
def test_remote_training_flags_are_refused_before_tfx_loads(
    tmp_path, capsys, monkeypatch, flags, message
):
    def no_settings(args):
        raise AssertionError("the flags' checks must come before the settings (and TFX)")

    monkeypatch.setattr("mtrec.commands.compile.settings_from_args", no_settings)
    assert cli_main(_compile(tmp_path, **flags)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


def test_good_remote_training_values_pass():
    good = {"distribution": None, "vertex_region": None, "vertex_project": None,
            "vertex_replicas": 2, "tfjob_namespace": "team-a", "tfjob_replicas": 4,
            "tfjob_cpu": "4", "tfjob_memory": "16Gi"}  # fmt: skip
    checks.check_remote_training(**good)
    for cpu in ("0.5", "500m", "+2", ".5"):
        checks.check_remote_training(**{**good, "tfjob_cpu": cpu})
    for memory in ("16G", "1e9", "512Mi", "1.5Gi", "128974848"):
        checks.check_remote_training(**{**good, "tfjob_memory": memory})
    # One replica, or a strategy that spans the replicas, is fine with mirrored.
    checks.check_remote_training(**{**good, "distribution": "mirrored", "tfjob_replicas": 1})
    checks.check_remote_training(**{**good, "distribution": "multi_worker_mirrored"})
    checks.check_remote_training(**{**good, "tfjob_namespace": None, "distribution": "mirrored"})


def test_an_output_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for output, message in [
        (tmp_path / "file" / "spec.yaml", "is a file, not a directory"),
        (tmp_path, "must end in .yaml"),
        (tmp_path / "folder.yaml", "is a directory"),
    ]:
        (tmp_path / "folder.yaml").mkdir(exist_ok=True)
        assert cli_main(_compile(tmp_path, **{"--output": str(output)})) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_good_values_pass_and_the_double_slash_of_a_gs_path_is_kept():
    for image in (IMAGE, "mtrec:dev", "localhost:5000/mtrec", "gcr.io/p/mtrec@sha256:" + "a" * 64):
        checks.check_image(image)
    for path in ("gs://bucket//root", "gs://b-1.x_y", "/models/mtrec", "hdfs://nn/root"):
        checks.check_storage_path("--pipeline-root", path)
    assert checks.relative_paths({"--a": "outputs/x", "--b": "/abs", "--c": "gs://b/x"}) == ["--a"]


def test_the_serving_dir_must_be_under_the_pvc_mount_after_dots_resolve(tmp_path):
    assert checks.under_mount("/models/mtrec", "/models/")
    assert checks.under_mount("/models", "/models")
    assert not checks.under_mount("/models/../etc", "/models")
    assert not checks.under_mount("/models2/mtrec", "/models")
    with pytest.raises(ValueError, match="absolute"):
        checks.check_deployment(image=IMAGE, pipeline_name="mtrec",
                                paths=checks.storage_paths("/r", "/e", "/m/x", "/s"),
                                serving_pvc="pvc", serving_pvc_mount="m")  # fmt: skip
    with pytest.raises(ValueError, match="needs a .yaml output"):  # before the compile
        checks.check_output(str(tmp_path / "spec.json"), serving_pvc="pvc")


def test_dataflow_without_the_image_for_its_workers_gets_a_note():
    dataflow = ["--runner=DataflowRunner", "--project=p", "--region=r"]
    (note,) = beam_notes(dataflow, IMAGE)
    assert f"--sdk_container_image={IMAGE}" in note
    assert beam_notes(["--runner", "DataflowRunner"], IMAGE)
    assert not beam_notes([*dataflow, f"--sdk_container_image={IMAGE}"], IMAGE)
    assert not beam_notes(None, IMAGE)  # the in-pod FnApiRunner
    assert not beam_notes(["--runner=FlinkRunner", "--environment_type=EXTERNAL"], IMAGE)
