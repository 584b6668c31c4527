"""ImportExampleGen: linking the examples ingestion wrote, against writing them again.

Why: mtrec's ingestion already writes each split as gzipped TFRecords in random
order, and ImportExampleGen read every record back and wrote it again (7-10% of
the pipeline at 100K-5M interactions in benchmarks/results/scale.md's 2026-11-26
series, and a second copy on disk). Its executor now links those files into the artifact
(components/example_gen/executor.py). This runs the pipeline's executor both
ways on the same examples, taking turns, in one process:

- linked: the executor as the pipeline runs it;
- written: the same executor with `LINK = False`, the Beam path it took before.

Data: the scale series' synthetic interactions (benchmarks/scale.py's users and
items per interaction), written by `write_examples` with 2 shards, and the
pipeline's Beam arguments for that many ratings (`--beam-mode auto`, 2 workers).
`new MB` is what the run wrote to disk: the output's files that share no inode
with the input.

    .venv/bin/python benchmarks/example_gen.py --interactions 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from mtrec.components.example_gen.executor import Executor
from mtrec.contracts.pipeline import EVAL_SPLIT, TRAIN_SPLIT
from mtrec.data.examples import write_examples
from mtrec.data.synthetic import generate
from mtrec.pipeline.local_runner import beam_args
from mtrec.pipeline.tfx_packaging import without_tfx_package

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import RATINGS_PER_ITEM, RATINGS_PER_USER  # the scale series' users and items

RESULTS = Path(__file__).resolve().parent / "results"
SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)


class Written(Executor):
    """The executor's Beam path for every input: how ImportExampleGen ran before linking."""

    LINK = False


def run_once(executor_class: type[Executor], examples_root: str, out: str, rows: int
             ) -> dict[str, Any]:
    """One ImportExampleGen execution over the train and eval splits: wall s, CPU s, new MB."""
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=s, pattern=f"{s}/*") for s in SPLITS])
    examples = standard_artifacts.Examples()
    examples.uri = out
    properties = {
        standard_component_specs.INPUT_BASE_KEY: examples_root,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(
            example_gen_pb2.Output()),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
    }
    args: list[Any] = beam_args("auto", 2, rows)
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    with without_tfx_package(args):  # as the local runner runs Beam executors
        executor = executor_class(BaseBeamExecutor.Context(beam_pipeline_args=args))
        executor.Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, properties)
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    new_bytes, files = 0, 0
    for root, _, names in os.walk(out):
        for name in names:
            st = os.stat(os.path.join(root, name))
            files += 1
            new_bytes += st.st_size if st.st_nlink == 1 else 0
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "new_mb": round(new_bytes / 2**20, 1), "files": files}


def _cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (Beam's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(n: int, repeats: int, work: str) -> dict[str, Any]:
    """Both executors `repeats` times each on n synthetic interactions, taking turns."""
    root = os.path.join(work, f"examples-{n}")
    dataset = generate(max(50, n // RATINGS_PER_USER), max(50, n // RATINGS_PER_ITEM), n, seed=0)
    write_examples(dataset, root, shards=2)
    input_mb = sum(p.stat().st_size for s in SPLITS for p in Path(root, s).iterdir()) / 2**20
    runs: dict[str, list[dict[str, Any]]] = {"linked": [], "written": []}
    for r in range(repeats):
        for name, cls in (("linked", Executor), ("written", Written)):
            out = os.path.join(work, f"out-{n}-{name}-{r}")
            runs[name].append(run_once(cls, root, out, n))
            shutil.rmtree(out)
            print(json.dumps({"interactions": n, "executor": name, **runs[name][-1]}), flush=True)
    shutil.rmtree(root)
    return {"interactions": n, "input_mb": round(input_mb, 1), "runs": runs}


def render(result: dict[str, Any]) -> str:
    lines = [
        "# ImportExampleGen: linked against written",
        "",
        f"Host: {result['host']}; load average {result['load_start']} at the start, "
        f"{result['load_end']} at the end (1/5/15 min). Each executor ran "
        f"{result['repeats']} times per size, taking turns; median wall and CPU (each run "
        "in brackets). Command: `.venv/bin/python benchmarks/example_gen.py --interactions "
        + " ".join(str(s["interactions"]) for s in result["sizes"]) + "`.",
        "",
        "| interactions | input MB (train + eval) | executor | wall s | CPU s | new MB written "
        "| files |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for size in result["sizes"]:
        for name, runs in size["runs"].items():
            wall = round(statistics.median(r["wall_s"] for r in runs), 2)
            cpu = round(statistics.median(r["cpu_s"] for r in runs), 2)
            lines.append(
                f"| {size['interactions']:,} | {size['input_mb']} | {name} | "
                f"{wall} ({', '.join(str(r['wall_s']) for r in runs)}) | "
                f"{cpu} ({', '.join(str(r['cpu_s']) for r in runs)}) | "
                f"{runs[-1]['new_mb']} | {runs[-1]['files']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interactions", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="mtrec-example-gen-") as work:
        sizes = [measure(n, args.repeats, work) for n in args.interactions]
    result = {"host": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
              "load_start": load_start, "load_end": [round(x, 2) for x in os.getloadavg()],
              "repeats": args.repeats, "sizes": sizes}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "example_gen.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "example_gen.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
