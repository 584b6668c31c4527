"""What `mtrec serve` serves: TF Serving's meaning of a base path, and `--model-config-file`.

A base path is the folder that holds the numeric version folders (TF
Serving's `--model_base_path`); a models.config names several such folders.
The deployment files in serving/deploy/ must describe the same layout.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from mtrec.cli import build_parser
from mtrec.serving import handlers
from mtrec.serving.client import MtrecClient
from mtrec.serving.errors import ServingError
from mtrec.serving.model_config import (
    ModelSource,
    base_path_problem,
    model_sources,
    parse_model_config,
    read_model_config_file,
)
from mtrec.serving.registry import ModelRegistry
from mtrec.serving.server import ServingServer, config_from_args
from tests import _serving_support as support

pytestmark = pytest.mark.skipif(support.EXTERNAL, reason="starts its own servers")

DEPLOY = Path(__file__).resolve().parents[1] / "serving" / "deploy"


def _config_text(models: dict[str, str]) -> str:
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{path}"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { latest { num_versions: 1 } }\n  }\n"
        for name, path in models.items()
    )
    return f"model_config_list {{\n{entries}}}\n"


def _serve(*argv: str) -> ServingServer:
    args = build_parser().parse_args(["serve", *argv, "--port", "0", "--poll-seconds", "0.1"])
    return ServingServer(config_from_args(args)).start()


# ------------------------------------------------------- one base path
def test_base_path_is_the_folder_of_the_versions() -> None:
    root = support.new_model_root()
    support.install_version(root, 7, support.second_model_dir())
    srv = _serve("--model-base-path", root, "--model-name", "ranker")
    try:
        with MtrecClient(srv.target, model_name="ranker", timeout=10) as client:
            assert client.wait_until_available(timeout=120) == 7
            assert len(client.recommend("1", 3)["items"]) == 3
        with MtrecClient(srv.target, model_name="mtrec", retries=0) as other:
            with pytest.raises(ServingError) as info:
                other.status()
            assert info.value.code == grpc.StatusCode.NOT_FOUND
    finally:
        srv.stop()


def test_the_parent_of_the_versions_serves_nothing_and_says_what_to_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = support.new_model_root()
    support.install_version(root, 1, support.second_model_dir())
    parent = os.path.dirname(root)
    problem = base_path_problem(ModelSource(os.path.basename(root), parent))
    assert problem is not None and f"use {root}" in problem
    assert base_path_problem(ModelSource("mtrec", root)) is None
    missing = os.path.join(parent, "nope")
    assert "does not exist" in (base_path_problem(ModelSource("mtrec", missing)) or "")

    with caplog.at_level(logging.WARNING, logger="mtrec.serving"):
        srv = _serve("--model-base-path", missing)
        try:
            srv.manager.poll_once()
            srv.manager.poll_once()
            assert srv.manager.current is None
        finally:
            srv.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # A missing folder is reported once: not on every poll, nor by the start-up check and
    # the poller both (it was "does not exist (yet)", then "cannot list ...").
    assert [w for w in warnings if missing in w] == [
        f"model 'mtrec': base path {missing} does not exist (yet)"], warnings


# ------------------------------------------------------- models.config
@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    paths = {"alpha": support.primary_model_dir(), "beta": support.second_model_dir()}
    roots = {}
    for name, model in paths.items():
        roots[name] = support.new_model_root(name)
        support.install_version(roots[name], 3 if name == "alpha" else 5, model)
    config = tmp_path_factory.mktemp("config") / "models.config"
    config.write_text(_config_text(roots))
    srv = _serve("--model-config-file", str(config), "--rest-port", "0")
    yield {"server": srv, "models": paths}
    srv.stop()


def test_model_config_file_serves_each_model_under_its_name(two_models: dict[str, Any]) -> None:
    srv = two_models["server"]
    answers = {}
    for name, version in (("alpha", 3), ("beta", 5)):
        with MtrecClient(srv.target, model_name=name, timeout=10) as client:
            assert client.wait_until_available(timeout=120) == version
            got = client.predict("recommend", {"user_id": np.array(["1"], dtype=object),
                                               "k": np.int32(5)})
            want = support.InProcessModel(two_models["models"][name])(
                "recommend", {"user_id": np.array(["1"], dtype=object), "k": np.int32(5)}
            )
            support.assert_outputs_equal(got, want)
            assert client.metadata()["model_spec"]["name"] == name
            answers[name] = got["scores"].tolist()
    assert answers["alpha"] != answers["beta"]  # two different models, not one twice
    with MtrecClient(srv.target, model_name="gamma", retries=0) as unknown:
        with pytest.raises(ServingError) as info:
            unknown.recommend("1", 3)
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        assert "served: alpha, beta" in info.value.message


def test_an_unknown_model_name_is_told_which_models_are_served() -> None:
    """`mtrec query` with the default --model-name to a server of models "a" and "b" got
    NOT_FOUND naming only "mtrec"."""
    models = ModelRegistry([SimpleNamespace(model_name="a"),  # type: ignore[list-item]
                            SimpleNamespace(model_name="b")])
    spec = model_pb2.ModelSpec(name="mtrec")
    for ask in (lambda: handlers.resolve(models, spec),
                lambda: handlers.model_status(
                    models, get_model_status_pb2.GetModelStatusRequest(model_spec=spec))):
        with pytest.raises(ServingError) as info:
            ask()
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        assert info.value.message.endswith("(model 'mtrec' is not served; served: a, b)")


def test_model_config_file_models_answer_over_rest(two_models: dict[str, Any]) -> None:
    import json
    import urllib.request

    port = two_models["server"].rest_port
    for name, version in (("alpha", "3"), ("beta", "5")):
        url = f"http://127.0.0.1:{port}/v1/models/{name}"
        status = json.load(urllib.request.urlopen(url, timeout=10))
        assert status["model_version_status"][0]["version"] == version


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("model_config_list { config { name: 'a' base_path: '/m' model_platform: 'pytorch' } }",
         "model_platform"),
        ("model_config_list { config { name: 'a' base_path: '/m' model_platform: 'tensorflow' "
         "model_version_policy { all {} } } }", "latest version"),
        ("model_config_list { config { name: 'a' base_path: '/m' model_platform: 'tensorflow' "
         "model_version_policy { latest { num_versions: 2 } } } }", "latest version"),
        ("model_config_list { config { name: 'a' base_path: '/m' } "
         "config { name: 'a' base_path: '/n' } }", "unique"),
        ("model_config_list { config { name: 'a' } }", "base_path"),
        ("model_config_list { }", "no config"),
        ("model_config_list { config { nme: 'a' } }", "not a TF Serving ModelServerConfig"),
    ],
)
def test_model_config_errors_are_clear(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_model_config(text)


def test_serve_takes_exactly_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for argv in (["serve"], ["serve", "--model-base-path", "/m", "--model-config-file", "/c"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    capsys.readouterr()
    with pytest.raises(ValueError, match="either"):
        model_sources(None, "mtrec", None)
    assert model_sources("/m/mtrec", "x", None) == (ModelSource("x", "/m/mtrec"),)


# ------------------------------------------------------- deploy files agree
def test_deploy_models_config_is_served_as_written() -> None:
    sources = read_model_config_file(str(DEPLOY / "models.config"))
    assert sources == (ModelSource("mtrec", "/models/mtrec"),)
    yaml = pytest.importorskip("yaml")
    k8s = list(yaml.safe_load_all((DEPLOY / "k8s" / "mtrec-serving.yaml").read_text()))
    config_map = next(doc for doc in k8s if doc["kind"] == "ConfigMap")
    assert parse_model_config(config_map["data"]["models.config"]) == sources
    # docker compose mounts the folder of the versions exactly at base_path.
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = [v.split(":")[-2] for v in compose["services"]["tfserving"]["volumes"]]
    assert sources[0].base_path in mounts
