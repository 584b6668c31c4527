"""pipeline/kfp_local.py's part of a KFP backend, on hand-written specs.

Task order, trigger conditions, parameters, skipping, and the resolver
queries against earlier runs' artifacts. test_kfp_local.py runs a spec that
`mtrec compile` wrote.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from mtrec.pipeline import kfp_local, kfp_metadata

# A two-term condition in the form TFX compiles `Cond(ph.logical_and(...))` into.
BLESSED = (
    "((inputs.artifacts['_Evaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0) && "
    "(inputs.artifacts['_RetrievalEvaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0))"
)


def _task(*producers: str, **parameters) -> dict:
    return {
        "componentRef": {"name": "c"},
        "inputs": {
            "artifacts": {
                p: {"taskOutputArtifact": {"producerTask": p, "outputArtifactKey": "out"}}
                for p in producers
            },
            "parameters": parameters,
        },
    }


def _blessings(evaluator: float, retrieval: float) -> dict:
    return {
        "artifacts": {
            f"_{name}.blessing": {"artifacts": [{"metadata": {"blessed": value}}]}
            for name, value in (("Evaluator", evaluator), ("RetrievalEvaluator", retrieval))
        }
    }


def test_tasks_run_after_their_producers_and_dependencies():
    spec = {
        "root": {
            "dag": {
                "tasks": {
                    "d": {**_task("b", "c"), "dependentTasks": ["a"]},
                    "c": _task("a"),
                    "b": _task("a"),
                    "a": _task(),
                }
            }
        }
    }
    assert kfp_local.task_order(spec) == ["a", "b", "c", "d"]
    spec["root"]["dag"]["tasks"]["a"] = _task("d")
    with pytest.raises(kfp_local.UnsupportedSpec, match="cycle"):
        kfp_local.task_order(spec)


def test_a_trigger_holds_only_when_every_term_does():
    assert kfp_local.trigger_holds(BLESSED, _blessings(1.0, 1.0))
    assert not kfp_local.trigger_holds(BLESSED, _blessings(1.0, 0.0))
    assert not kfp_local.trigger_holds(BLESSED, _blessings(0.0, 1.0))
    with pytest.raises(kfp_local.UnsupportedSpec, match="not supported"):
        kfp_local.trigger_holds("inputs.parameters['x'] > 1", _blessings(1.0, 1.0))


def test_parameters_come_from_constants_then_pipeline_inputs_with_overrides(tmp_path):
    spec = {
        "root": {
            "inputDefinitions": {"parameters": {"data_root": {"defaultValue": "/compiled"}}},
            "dag": {
                "tasks": {
                    "t": _task(
                        data={"componentInputParameter": "data_root"},
                        n={"runtimeValue": {"constant": 3.0}},
                    )
                }
            },
        },
        "components": {
            "c": {
                "outputDefinitions": {
                    "artifacts": {
                        "out": {"artifactType": {"instanceSchema": "title: tfx.Examples\n"}}
                    }
                }
            }
        },
    }
    params = kfp_local.root_parameters(spec, {"data_root": "/at-run-time"})
    got = kfp_local.executor_input(spec, "t", params, {}, tmp_path / "t")
    assert got["inputs"]["parameterValues"] == {"data": "/at-run-time", "n": 3.0}
    (out,) = got["outputs"]["artifacts"]["out"]["artifacts"]
    assert out["uri"] == str(tmp_path / "t" / "out") and out["type"]["instanceSchema"]
    assert got["outputs"]["outputFile"] == str(tmp_path / "t" / kfp_local.OUTPUT_FILE)
    assert kfp_local.root_parameters(spec, {}) == {"data_root": "/compiled"}
    with pytest.raises(ValueError, match="unknown pipeline parameters"):
        kfp_local.root_parameters(spec, {"epochs": 3})


def _single_task_spec(executor: dict) -> dict:
    return {
        "root": {"dag": {"tasks": {"r": _task()}}},
        "components": {"c": {"executorLabel": "r_executor"}},
        "deploymentSpec": {"executors": {"r_executor": executor}},
    }


def test_a_task_skipped_by_its_trigger_skips_the_tasks_that_read_its_outputs(tmp_path):
    """As compiled (pipeline.py's gate chain): the retrieval gate refused, so
    TFMA's Evaluator is skipped, and the Pusher, which reads TFMA's blessing,
    is skipped too rather than failing on an output that never existed."""
    gate_blessed = "(inputs.artifacts['_gate.blessing'].artifacts[0].metadata['blessed'] == 1.0)"
    query = 'schema_title="mtrec.RetrievalBlessing" AND state=LIVE'
    never_run = {"container": {"image": "x", "command": ["false"]}}  # fails if it runs
    gate_input = {"taskOutputArtifact": {"producerTask": "gate", "outputArtifactKey": "blessing"}}
    tasks = {
        "gate": {"componentRef": {"name": "gate"}},
        "tfma": {"componentRef": {"name": "tfma"}, "dependentTasks": ["gate"],
                 "triggerPolicy": {"condition": gate_blessed},
                 "inputs": {"artifacts": {"_gate.blessing": gate_input}}},
        "push": {"componentRef": {"name": "push"}, "dependentTasks": ["gate", "tfma"],
                 "triggerPolicy": {"condition": gate_blessed},
                 "inputs": {"artifacts": {"_gate.blessing": gate_input, "model_blessing": {
                     "taskOutputArtifact": {"producerTask": "tfma",
                                            "outputArtifactKey": "blessing"}}}}},
    }
    spec = {
        "root": {"dag": {"tasks": tasks}},
        "components": {name: {"executorLabel": name} for name in tasks},
        "deploymentSpec": {"executors": {
            "gate": {"resolver": {"outputArtifactQueries": {"blessing": {"filter": query}}}},
            "tfma": never_run,
            "push": never_run,
        }},
    }  # fmt: skip
    store = kfp_metadata.ArtifactStore(tmp_path / kfp_metadata.STORE_FILE)
    store.record([_artifact("run-1/gate/blessing", "mtrec.RetrievalBlessing", blessed=0.0)])
    runs = {run.name: run.status for run in kfp_local.run_spec(spec, tmp_path / "run-1")}
    assert runs == {"gate": "resolved", "tfma": "skipped", "push": "skipped"}


def test_an_importer_or_an_unknown_query_is_refused_with_a_message(tmp_path, capsys):
    with pytest.raises(kfp_local.UnsupportedSpec, match="importer task"):
        kfp_local.run_spec(_single_task_spec({"importer": {}}), tmp_path / "run")
    odd = {"resolver": {"outputArtifactQueries": {"m": {"filter": "create_time>1"}}}}
    with pytest.raises(kfp_local.UnsupportedSpec, match="create_time"):
        kfp_local.run_spec(_single_task_spec(odd), tmp_path / "run")
    # The command line says so too, without a traceback.
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(_single_task_spec({"importer": {}})))
    assert kfp_local.main([str(tmp_path / "spec.yaml"), str(tmp_path / "run")]) == 1
    assert "importer task" in capsys.readouterr().err
    assert kfp_local.main([str(tmp_path / "spec.yaml"), "run", "--param", "data_root=x"]) == 1
    assert "unknown pipeline parameters ['data_root']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        kfp_local.main([str(tmp_path / "spec.yaml"), "run", "--param", "data_root"])
    assert "NAME=VALUE" in capsys.readouterr().err


# What TFX 1.16 compiles the latest-blessed-model resolver into (two queries).
BLESSING_QUERY = (
    'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
)
MODEL_QUERY = (
    'schema_title="tfx.Model" AND state=LIVE AND '
    "name=\"{{$.inputs.artifacts['input'].metadata['current_model_id']}}\""
)


def _artifact(name: str, title: str, **metadata) -> dict:
    return {"name": name, "type": {"instanceSchema": f"title: {title}\n"}, "metadata": metadata}


def _latest_blessed_model(store: kfp_metadata.ArtifactStore) -> list[dict]:
    """The two resolver tasks, the second fed by the first (as compiled)."""
    blessing = store.newest(BLESSING_QUERY)
    query = kfp_metadata.resolve_query(MODEL_QUERY, {"input": {"artifacts": blessing}})
    return store.newest(query) if query is not None else []


def test_the_resolver_queries_find_the_newest_blessed_model_or_nothing(tmp_path):
    store = kfp_metadata.ArtifactStore(tmp_path / kfp_metadata.STORE_FILE)
    assert _latest_blessed_model(store) == []  # a first run: no baseline
    store.record([
        _artifact("run-1/Trainer/model", "tfx.Model"),
        _artifact("run-1/Evaluator/blessing", "tfx.ModelBlessing", blessed=1.0,
                  current_model_id="run-1/Trainer/model"),
        _artifact("run-2/Trainer/model", "tfx.Model"),
        _artifact("run-2/Evaluator/blessing", "tfx.ModelBlessing", blessed=0.0,
                  current_model_id="run-2/Trainer/model"),
        # The RetrievalEvaluator's verdict, newer than TFMA's, in its own type.
        _artifact("run-2/RetrievalEvaluator/blessing", "mtrec.RetrievalBlessing", blessed=1.0,
                  current_model_id=8.1e17),
    ])  # fmt: skip
    assert [a["name"] for a in _latest_blessed_model(store)] == ["run-1/Trainer/model"]
    # Were it a tfx.ModelBlessing (before), the newest blessed one would be it, and
    # its current_model_id (an MLMD id, not an artifact name) would find no model.
    store.record([_artifact("run-2/RetrievalEvaluator/blessing", "tfx.ModelBlessing",
                            blessed=1.0, current_model_id=8.1e17)])  # fmt: skip
    assert _latest_blessed_model(store) == []


def test_the_command_line_reports_each_task_as_it_goes_even_into_a_file(tmp_path):
    """A run takes minutes, and its output usually goes to a file, where Python
    holds stdout until exit: each line is flushed as the task starts and ends.
    The task itself checks the file already says it is running."""
    out = tmp_path / "out.txt"
    check = "import sys; assert 'running' in open(sys.argv[1]).read(), 'nothing reported yet'"
    spec = _single_task_spec({"container": {"image": "x", "command": ["python", "-c", check],
                                            "args": [str(out)]}})  # fmt: skip
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    with out.open("w") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "mtrec.pipeline.kfp_local", "spec.yaml", "run"],
            cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert lines[0].split()[:2] == ["r", "running"]
    assert lines[1].split()[:2] == ["r", "succeeded"] and lines[-1].startswith("1 tasks in")
    # The run root is made absolute: artifact URIs do not depend on the cwd.
    assert f"{tmp_path / 'run' / 'r' / kfp_local.LOG_FILE}" in lines[1]


def test_a_missing_or_foreign_spec_file_is_one_line(tmp_path, capsys):
    (tmp_path / "job.json").write_text("{}")
    (tmp_path / "broken.yaml").write_text("a: [\n")
    for name, message in [("none.yaml", "No such file"), ("job.json", "not a spec"),
                          ("broken.yaml", "not a spec")]:  # fmt: skip
        assert kfp_local.main([str(tmp_path / name), str(tmp_path / "run")]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_a_cloud_run_root_is_refused_not_folded_into_a_local_folder(tmp_path, capsys):
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(_single_task_spec({"importer": {}})))
    assert kfp_local.main([str(tmp_path / "spec.yaml"), "gs://bucket/root/run-1"]) == 1
    assert "a local folder" in capsys.readouterr().err
