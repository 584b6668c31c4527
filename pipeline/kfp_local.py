"""Runs a compiled KFP v2 pipeline spec on this machine, task by task, as the pods would.

`mtrec compile` writes a PipelineSpec whose tasks are container commands
(`python -m mtrec.pipeline.kfp_entrypoint --json_serialized_invocation_args
{{$}} ...`, TFX's container entrypoint) and, unless compiled with
`--no-baseline`, two resolver tasks that look up the latest blessed model.
On a cluster the KFP v2 backend (or Vertex) resolves each task's parameters
and input artifacts, fills `{{$}}` with an `ExecutorInput` JSON, runs the
command in the image, and reads the `ExecutorOutput` the command writes to
pass artifacts on. This module does the same with subprocesses of this Python:
the spec's commands and arguments run unchanged, in dependency order, so what
only compiled before (the container entrypoint, the argument encoding,
artifact passing between tasks, runtime parameters, the trigger conditions of
TFMA's Evaluator and the Pusher) is executed. Resolver tasks run
their compiled queries against the artifacts of earlier runs under the same
parent folder (kfp_metadata.py: `ROOT/run-1`, `ROOT/run-2`, ... are one
pipeline), as Vertex runs them against its metadata store.

What it does not emulate: the image (the command runs on this machine's
install of the same lock; `env` adds the image's ENV), caching (every task
runs), ImportExampleGen's span/fingerprint driver (the container's
`lifecycle.preCacheCheck` hook, which Vertex runs before the task; here the
executor resolves the same unversioned patterns itself), importer tasks, query
and trigger forms other than those TFX 1.16 compiles (each raises
UnsupportedSpec), and the KFP OSS backend's refusal of resolver tasks
(docs/kubeflow.md §5: compile with `--no-baseline` for it).

The command line prints a line as each task starts and ends, flushed, so a
run's log file shows where it is (a run takes minutes; the Trainer alone, two).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mtrec.pipeline.kfp_metadata import STORE_FILE, ArtifactStore, UnsupportedSpec, resolve_query

EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
OUTPUT_FILE = "executor_output.json"
INPUT_FILE = "executor_input.json"  # what `{{$}}` became: to re-run one task by hand
LOG_FILE = "log.txt"
# One `inputs.artifacts['KEY'].artifacts[0].metadata['FIELD'] == VALUE` term of a
# trigger condition (what TFX compiles a component's `with Cond(...)` into).
_CONDITION_TERM = re.compile(
    r"inputs\.artifacts\['(?P<key>[^']+)'\]\.artifacts\[0\]\.metadata\['(?P<field>[^']+)'\]"
    r"\s*==\s*(?P<value>'[^']*'|[-+0-9.eE]+)"
)


@dataclasses.dataclass(frozen=True)
class TaskRun:
    """One task's outcome: ran (with its seconds and log) or skipped by its trigger."""

    name: str
    status: str  # "succeeded" | "skipped" | "resolved"
    seconds: float
    log: Path | None
    outputs: Mapping[str, list[dict[str, Any]]]  # output key -> RuntimeArtifact dicts


class TaskFailed(RuntimeError):
    def __init__(self, task: str, returncode: int, log: Path) -> None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        super().__init__(f"task {task} exited with {returncode}; log {log}, last lines:\n{tail}")
        self.task, self.returncode, self.log = task, returncode, log


def load_spec(path: str | os.PathLike) -> tuple[dict, dict[str, Any]]:
    """(PipelineSpec, runtime parameter values) from `mtrec compile`'s .yaml or .json;
    ValueError (one line) for a file that is missing or is not such a spec."""
    try:
        text = Path(path).read_text()
        if str(path).endswith(".json"):
            job = json.loads(text)
            spec = job["pipelineSpec"]
            values = dict(job.get("runtimeConfig", {}).get("parameterValues", {}))
        else:
            spec, *_ = yaml.safe_load_all(text)
            values = {}
    except OSError as err:
        raise ValueError(f"{path}: {err.strerror or err}") from err
    except (ValueError, yaml.YAMLError, KeyError, TypeError, AttributeError) as err:
        first = (str(err).splitlines() or [""])[0]
        raise ValueError(
            f"{path} is not a spec written by `mtrec compile` ({type(err).__name__}: {first})"
        ) from err
    if not isinstance(spec, dict) or "tasks" not in spec.get("root", {}).get("dag", {}):
        raise ValueError(f"{path} is not a spec written by `mtrec compile` (no root DAG)")
    return spec, values


def format_run(run: TaskRun) -> str:
    """One line of the command's output: task, outcome, seconds, log."""
    return f"{run.name:<20} {run.status:<10} {run.seconds:7.1f}s  {run.log or ''}"


def task_order(spec: Mapping[str, Any]) -> list[str]:
    """The root DAG's tasks, each after every task it depends on (name order among ready ones)."""
    tasks = spec["root"]["dag"]["tasks"]
    needs = {name: set(_upstream(task)) for name, task in tasks.items()}
    order: list[str] = []
    while needs:
        ready = sorted(name for name, deps in needs.items() if deps <= set(order))
        if not ready:
            raise UnsupportedSpec(f"tasks form a cycle: {sorted(needs)}")
        order.extend(ready)
        for name in ready:
            del needs[name]
    return order


def _upstream(task: Mapping[str, Any]) -> list[str]:
    artifacts = task.get("inputs", {}).get("artifacts", {})
    producers = [a["taskOutputArtifact"]["producerTask"] for a in artifacts.values()]
    return [*task.get("dependentTasks", []), *producers]


def root_parameters(spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The pipeline inputs: compiled defaults, then `overrides` (unknown names raise)."""
    defined = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    unknown = set(overrides) - set(defined)
    if unknown:
        raise ValueError(f"unknown pipeline parameters {sorted(unknown)}; known: {sorted(defined)}")
    values = {k: d["defaultValue"] for k, d in defined.items() if "defaultValue" in d}
    values.update(overrides)
    missing = set(defined) - set(values)
    if missing:
        raise ValueError(f"pipeline parameters without a value: {sorted(missing)}")
    return values


def executor_input(
    spec: Mapping[str, Any],
    name: str,
    params: Mapping[str, Any],
    produced: Mapping[str, Mapping[str, list[dict[str, Any]]]],
    task_root: Path,
) -> dict[str, Any]:
    """The ExecutorInput (JSON form) the backend would give task `name`."""
    task = spec["root"]["dag"]["tasks"][name]
    component = spec["components"][task["componentRef"]["name"]]
    parameter_values = {}
    for key, source in task.get("inputs", {}).get("parameters", {}).items():
        if "runtimeValue" in source:
            parameter_values[key] = source["runtimeValue"]["constant"]
        elif "componentInputParameter" in source:
            parameter_values[key] = params[source["componentInputParameter"]]
        else:
            raise UnsupportedSpec(f"{name}.{key}: parameter source {sorted(source)}")
    artifacts = {}
    for key, source in task.get("inputs", {}).get("artifacts", {}).items():
        if "taskOutputArtifact" not in source:
            raise UnsupportedSpec(f"{name}.{key}: artifact source {sorted(source)}")
        upstream = source["taskOutputArtifact"]
        artifacts[key] = {
            "artifacts": produced[upstream["producerTask"]][upstream["outputArtifactKey"]]
        }
    outputs = {
        key: {
            "artifacts": [
                {
                    # Unique within the pipeline root (kfp_metadata's resolver queries name it).
                    "name": f"{task_root.parent.name}/{name}/{key}",
                    "type": definition["artifactType"],
                    "uri": str(task_root / key),
                    "metadata": {},
                }
            ]
        }
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items()
    }
    return {
        "inputs": {"parameterValues": parameter_values, "artifacts": artifacts},
        "outputs": {"artifacts": outputs, "outputFile": str(task_root / OUTPUT_FILE)},
    }


def trigger_holds(condition: str, inputs: Mapping[str, Any]) -> bool:
    """Evaluates a TFX-compiled trigger condition: equalities on input artifacts'
    metadata joined by `&&` (the only form TFX 1.16 compiles)."""
    terms = [t.strip(" ()") for t in condition.split("&&")]
    holds = True
    for term in terms:
        match = _CONDITION_TERM.fullmatch(term)
        if match is None:
            raise UnsupportedSpec(f"trigger condition term not supported: {term!r}")
        (artifact,) = inputs["artifacts"][match["key"]]["artifacts"]
        want = match["value"]
        want_value = want.strip("'") if want.startswith("'") else float(want)
        holds = holds and artifact.get("metadata", {}).get(match["field"]) == want_value
    return holds


def run_spec(
    spec: Mapping[str, Any],
    run_root: str | os.PathLike,
    *,
    parameters: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    progress: Callable[[str], None] | None = None,
) -> list[TaskRun]:
    """Runs every task of `spec` under `run_root/<task>/`; raises TaskFailed on the first failure.

    `python` replaces the commands' `python` (the image's interpreter); `env`
    is added to this process's environment (the image's ENV). `progress` gets
    a line when a container task starts and one when each task ends.
    """
    if "://" in str(run_root):  # Path would fold gs://b/x into gs:/b/x, a local folder
        raise ValueError(f"run root {run_root}: a local folder (the tasks' logs are written there)")
    run_root = Path(run_root).absolute()  # artifact URIs, as a pod's, do not depend on the cwd
    executors = spec["deploymentSpec"]["executors"]
    params = root_parameters(spec, parameters or {})
    store = ArtifactStore(run_root.parent / STORE_FILE)
    produced: dict[str, dict[str, list[dict[str, Any]]]] = {}
    runs: list[TaskRun] = []
    skipped: set[str] = set()
    report = progress or (lambda line: None)

    def done(run: TaskRun) -> None:
        runs.append(run)
        report(format_run(run))

    def skip(name: str) -> None:
        skipped.add(name)
        produced[name] = {}
        done(TaskRun(name, "skipped", 0.0, None, {}))

    for name in task_order(spec):
        task = spec["root"]["dag"]["tasks"][name]
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        executor = executors[label]
        task_root = run_root / name
        # A skipped task's outputs never exist, so its dependants do not run
        # either (the Pusher, when the retrieval gate skipped TFMA).
        if skipped & set(task.get("dependentTasks", [])):
            skip(name)
            continue
        invocation = executor_input(spec, name, params, produced, task_root)
        if "resolver" in executor:
            produced[name] = _resolve(executor["resolver"], invocation["inputs"], store)
            done(TaskRun(name, "resolved", 0.0, None, produced[name]))
            continue
        if "container" not in executor:
            raise UnsupportedSpec(
                f"task {name} is a {sorted(executor)[0]} task, which this runner does not emulate"
            )
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not trigger_holds(condition, invocation["inputs"]):
            skip(name)
            continue
        task_root.mkdir(parents=True, exist_ok=True)
        (task_root / INPUT_FILE).write_text(json.dumps(invocation, indent=1))
        report(f"{name:<20} running    (log {task_root / LOG_FILE})")
        started = time.perf_counter()
        log = _run_container(executor["container"], invocation, task_root, env, python)
        outputs = _outputs(invocation, task_root / OUTPUT_FILE)
        store.record([artifact for artifacts in outputs.values() for artifact in artifacts])
        produced[name] = outputs
        done(TaskRun(name, "succeeded", time.perf_counter() - started, log, outputs))
    return runs


def _resolve(
    resolver: Mapping[str, Any], inputs: Mapping[str, Any], store: ArtifactStore
) -> dict[str, list[dict[str, Any]]]:
    """A resolver task's outputs: for each query, the newest recorded match, or nothing."""
    outputs = {}
    for key, query in resolver.get("outputArtifactQueries", {}).items():
        filled = resolve_query(query["filter"], inputs.get("artifacts", {}))
        outputs[key] = store.newest(filled) if filled is not None else []
    return outputs


def _run_container(
    container: Mapping[str, Any],
    invocation: Mapping[str, Any],
    task_root: Path,
    env: Mapping[str, str] | None,
    python: str,
) -> Path:
    command = [*container["command"], *container.get("args", [])]
    if command[0] == "python":
        command[0] = python
    payload = json.dumps(invocation)
    command = [payload if arg == EXECUTOR_INPUT_PLACEHOLDER else arg for arg in command]
    unresolved = [arg for arg in command if "{{$" in arg]
    if unresolved:
        raise UnsupportedSpec(f"placeholders this runner does not fill: {unresolved}")
    log = task_root / LOG_FILE
    with log.open("wb") as out:
        result = subprocess.run(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            check=False,
        )
    if result.returncode:
        raise TaskFailed(task_root.name, result.returncode, log)
    return log


def _outputs(invocation: Mapping[str, Any], output_file: Path) -> dict[str, list[dict[str, Any]]]:
    """The declared output artifacts, with the uri and metadata the executor reported."""
    reported = {}
    if output_file.exists():  # an executor without outputs may not write it
        reported = json.loads(output_file.read_text()).get("artifacts", {})
    outputs = {}
    for key, declared in invocation["outputs"]["artifacts"].items():
        artifacts = [dict(a) for a in declared["artifacts"]]
        written_list = reported.get(key, {}).get("artifacts", [])
        for artifact, written in zip(artifacts, written_list, strict=False):
            artifact["uri"] = written.get("uri", artifact["uri"])
            artifact["metadata"] = written.get("metadata", {})
        outputs[key] = artifacts
    return outputs


def main(argv: list[str] | None = None) -> int:
    """`python -m mtrec.pipeline.kfp_local SPEC RUN_ROOT [--param NAME=VALUE ...]`."""
    parser = argparse.ArgumentParser(
        prog="python -m mtrec.pipeline.kfp_local",
        description="Run a spec from `mtrec compile` on this machine, task by task.",
    )
    parser.add_argument("spec", help="the compiled .yaml or .json")
    parser.add_argument("run_root", help="folder for the tasks' artifacts and logs")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a pipeline parameter (e.g. data_root=DIR); repeatable",
    )
    args = parser.parse_args(argv)
    malformed = [p for p in args.param if "=" not in p]
    if malformed:
        parser.error(f"--param takes NAME=VALUE, got {malformed}")
    started = time.perf_counter()
    try:
        spec, values = load_spec(args.spec)
        values.update(dict(p.split("=", 1) for p in args.param))
        # Flushed line by line: redirected to a file, stdout would hold it all to the end.
        runs = run_spec(spec, args.run_root, parameters=values,
                        progress=lambda line: print(line, flush=True))
    except (TaskFailed, ValueError) as err:  # ValueError: UnsupportedSpec, bad parameters
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{len(runs)} tasks in {time.perf_counter() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
