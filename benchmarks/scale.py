"""How the local pipeline scales with data size: wall time, peak memory, throughput.

For each size (interactions; users and items grow proportionally) a fresh
subprocess generates synthetic data (mtrec.data.synthetic.generate), writes
examples (mtrec.data.examples.write_examples) and runs the whole pipeline
with mtrec.pipeline.local_runner (no cache). Why a subprocess: peak memory of
one size must not include the heap left behind by the previous one.

Timings per component come from ML Metadata: LocalDagRunner registers an
execution when the component starts and updates it when it is published, so
[create_time, last_update_time] is the component's interval. A sampling thread
records the RSS of the whole process tree (Beam's DirectRunner workers are
child processes) every 0.25 s; each sample is attributed to the component
whose interval contains it, which gives the per-component peak.

    .venv/bin/python benchmarks/scale.py --sizes 100000 1000000 --epochs 1

Writes benchmarks/results/scale.json and scale.md, prints the table, names the
dominating component, gives the Trainer's phases (scan, fit, evaluate, export:
its training_metrics.json) and fits each component's growth exponent (log-log
slope of wall time against interactions).

    .venv/bin/python benchmarks/scale.py --runner direct portable --sizes 100000 1000000

runs each size once per Beam runner, one after the other in this invocation
(so both see the same machine load): the DirectRunner (multi-processing,
`--workers` processes) and Beam's portable runner with one external worker
pool that starts one SDK worker per Beam job (pipeline/beam_portable.py; the
pool and its worker are in the sampled process tree). These go to
scale.json["runners"] and a section of their own in scale.md; the
DirectRunner series above stays as it was measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from scale_report import (
    growth_exponents,
    render,
    render_runners,
    write_json,
    write_markdown,
)

RESULTS = Path(__file__).resolve().parent / "results"
RATINGS_PER_USER = 60  # ~ML-100K's 106; users = n / 60
RATINGS_PER_ITEM = 80  # items = n / 80
SAMPLE_SECONDS = 0.25
RUNNERS = ("direct", "portable")


class TreeSampler(threading.Thread):
    """Samples (time, RSS of this process and all its descendants) until stopped."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.cpu: list[tuple[float, float]] = []  # (time, CPU seconds of the tree)
        self._stop_event = threading.Event()
        self._root = psutil.Process()

    def rss_and_cpu(self) -> tuple[int, float]:
        rss, cpu = 0, 0.0
        for proc in [self._root, *self._root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system
        return rss, cpu

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss, cpu = self.rss_and_cpu()
            self.samples.append((time.time(), rss))
            self.cpu.append((time.time(), cpu))
            self._stop_event.wait(self.interval)

    def idle_for(self, seconds: float) -> bool:
        """True if the process tree used under 1 CPU-second over the last `seconds`
        (a hung DirectRunner: workers alive, nothing running). Exited workers drop
        out of the sum, so only an increase counts as work."""
        if not self.cpu or self.cpu[-1][0] - self.cpu[0][0] < seconds:
            return False
        recent = [c for t, c in self.cpu if t >= self.cpu[-1][0] - seconds]
        return max(recent) - recent[0] < 1.0

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak(self, start: float, end: float) -> int:
        """Largest sample within [start, end]; for a stage shorter than the sampling
        interval (no sample inside), the sample nearest to it."""
        inside = [rss for t, rss in self.samples if start <= t <= end]
        if inside or not self.samples:
            return max(inside, default=0)
        return min(self.samples, key=lambda s: min(abs(s[0] - start), abs(s[0] - end)))[1]


def component_intervals(metadata_path: str) -> dict[str, tuple[float, float, str]]:
    """Node id -> (start, end, state) of its execution in the (only) run, from MLMD."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    states = metadata_store_pb2.Execution.State
    result = {}
    for execution in store.get_executions():
        nodes = [
            c.name.split(".", 1)[-1]
            for c in store.get_contexts_by_execution(execution.id)
            if c.type == "node"
        ]
        if nodes:
            result[nodes[0]] = (
                execution.create_time_since_epoch / 1000,
                execution.last_update_time_since_epoch / 1000,
                states.Name(execution.last_known_state),
            )
    return result


# The row-sparse optimizer at every size, so that the series compares like with
# like: the default ("auto", models/config.py) picks it from 10,000 users or
# items, 600K interactions here; below that it is Keras' Adam.
SCALE_MODEL_CONFIG = {"optimizer": "lazy_adam"}


def run_one(
    n: int, epochs: int, workers: int, home: str, stall_seconds: float = 600,
    runner: str = "direct", text_encoder: bool = True,
) -> dict[str, Any]:
    """One size, in this process: data, examples, pipeline; returns its measurements.

    `runner`: "direct" (the local runner, multi-processing: configs.LOCAL_BEAM_ARGS;
    scale.md's series named DirectRunner, which ran the same FnApiRunner here: Prism,
    which it tries first, could not be downloaded) or "portable" (one external
    worker pool with `workers` SDK workers). `text_encoder=False` leaves it out.
    """
    # Here, not at the top: the parent process must not load TensorFlow (its
    # memory would be in no child's peak, but it would slow every start).
    import mtrec  # noqa: F401  (Keras 2 before TensorFlow)
    from mtrec.contracts.artifacts import PHASE_SECONDS, TRAINING_METRICS_FILE
    from mtrec.contracts.pipeline import MODEL_RUN, TRAINER
    from mtrec.data.examples import write_examples
    from mtrec.data.synthetic import generate
    from mtrec.pipeline import beam_portable, local_runner
    from mtrec.pipeline.home_paths import LocalPaths

    n_users, n_items = max(50, n // RATINGS_PER_USER), max(50, n // RATINGS_PER_ITEM)
    load_start = os.getloadavg()[0]
    sampler = TreeSampler()
    sampler.start()
    stages: dict[str, dict[str, Any]] = {}
    t0 = time.time()
    dataset = generate(n_users, n_items, n, seed=0)
    t1 = time.time()
    examples_root = os.path.join(home, "examples")
    report = write_examples(dataset, examples_root, shards=workers)
    del dataset
    t2 = time.time()
    for name, (start, end) in (("generate", (t0, t1)), ("write_examples", (t1, t2))):
        stages[name] = {
            "wall_s": end - start,
            "peak_rss_mb": sampler.peak(start, end) / 2**20,
            "state": "COMPLETE",
        }
    paths = LocalPaths(home)
    errors: list[str] = []
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, not {runner!r}")
    pools = beam_portable.worker_pools(1) if runner == "portable" else contextlib.nullcontext()

    # PipelineSettings fields beyond settings()'s own keywords (its **fields).
    fields: dict[str, Any] = {} if text_encoder else {"text_encoder": None}

    def pipeline(runner_args: list[str] | None) -> None:
        try:
            local_runner.run(paths, local_runner.settings(
                paths,
                examples_root=examples_root,
                model={"epochs": epochs, **SCALE_MODEL_CONFIG},
                workers=workers,
                runner_args=runner_args,
                enable_cache=False,
                **fields,
            ))
        except Exception as err:  # recorded: the table shows how far it got
            errors.append(f"{type(err).__name__}: {err}")

    with pools as ports:  # the pool (and its SDK workers) are children: sampled too
        args = beam_portable.beam_args(ports[0]) if ports else None
        # In a thread, so that a hung DirectRunner (seen once at 5M: Transform's workers
        # idle for 14 min after writing their output) ends the size with what was measured.
        thread = threading.Thread(target=pipeline, args=(args,), daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(timeout=5)
            if thread.is_alive() and sampler.idle_for(stall_seconds):
                errors.append(f"stalled: the process tree used no CPU for {stall_seconds:.0f} s")
                break
    error = "; ".join(errors) or None
    t3 = time.time()
    sampler.stop()
    for node, (start, end, state) in sorted(
        component_intervals(paths.metadata_path).items(), key=lambda kv: kv[1][0]
    ):
        stages[node] = {
            "wall_s": end - start,
            "peak_rss_mb": sampler.peak(start, end) / 2**20,
            "state": state,
        }
    for stage in stages.values():
        stage["examples_per_s"] = n / stage["wall_s"] if stage["wall_s"] > 0 else None
    # A size's home holds one pipeline run, so at most one Trainer's metrics.
    metrics = next(
        Path(paths.pipeline_root, TRAINER, MODEL_RUN).glob(f"*/{TRAINING_METRICS_FILE}"), None)
    return {
        "interactions": n,
        "users": n_users,
        "items": n_items,
        "rows": report.get("rows"),
        "epochs": epochs,
        "workers": workers,
        "runner": runner,
        "text_encoder": text_encoder,
        "stages": stages,
        "pipeline_wall_s": t3 - t2,
        "total_wall_s": t3 - t0,
        "peak_rss_mb": max((rss for _, rss in sampler.samples), default=0) / 2**20,
        "load_avg_1m": {"start": load_start, "end": os.getloadavg()[0]},
        "cpus": os.cpu_count(),
        "error": error,
        # Where the Trainer's time went (scan, build, fit, evaluate, export): the
        # folder that holds it is gone once the size ends, unless --keep.
        "trainer_phases_s": (
            json.loads(metrics.read_text()).get(PHASE_SECONDS) if metrics else None
        ),
    }


def run_size(
    n: int, epochs: int, workers: int, timeout: float, keep: bool, stall: float = 600,
    runner: str = "direct", text_encoder: bool = True,
) -> dict[str, Any]:
    """Run one size in a fresh subprocess (own session, its group killed when it ends)."""
    home = tempfile.mkdtemp(prefix=f"mtrec-scale-{n}-{runner}-")
    out = os.path.join(home, "result.json")
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(n),
        "--epochs",
        str(epochs),
        "--workers",
        str(workers),
        "--home",
        home,
        "--out",
        out,
        "--stall",
        str(stall),
        "--runner",
        runner,
        *([] if text_encoder else ["--no-text-encoder"]),
    ]
    started = time.time()
    proc = subprocess.Popen(cmd, start_new_session=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    # Also reaps Beam workers a stalled child left behind when it exited.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        if os.path.exists(out):
            return json.loads(Path(out).read_text())
        return {
            "interactions": n,
            "runner": runner,
            "error": f"no result (exit {proc.returncode}, "
            f"{time.time() - started:.0f}s, timeout {timeout:.0f}s)",
        }
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def _previous(path: Path, key: str = "results") -> list[dict[str, Any]]:
    return json.loads(path.read_text()).get(key, []) if path.exists() else []


def _write(out: Path, results: list[dict[str, Any]], runners: list[dict[str, Any]]) -> str:
    """scale.json and scale.md from both series; returns the markdown."""
    slopes = growth_exponents(results)
    write_json(out / "scale.json", results, slopes, runners)
    text = render(results, slopes) + render_runners(runners)
    write_markdown(out / "scale.md", text)
    return text


def compare_runners(args: argparse.Namespace, out: Path) -> None:
    """Each size once per runner, back to back; into scale.json["runners"]."""
    measured = {(n, r) for n in args.sizes for r in args.runner}
    runners = [r for r in _previous(out / "scale.json", "runners")
               if (r["interactions"], r.get("runner")) not in measured]
    results = _previous(out / "scale.json")
    for n in args.sizes:
        for runner in args.runner:
            print(f"== {n:,} interactions, {runner} runner", flush=True)
            runners.append(run_size(n, args.epochs, args.workers, args.timeout, args.keep,
                                    args.stall, runner, not args.no_text_encoder))
            runners.sort(key=lambda r: (r["interactions"], RUNNERS.index(r["runner"])))
            _write(out, results, runners)  # after every run: a timeout loses nothing
    print(render_runners(runners))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--workers", type=int, default=2,
                   help="local runner workers; SDK workers of the portable runner's pool")
    p.add_argument("--runner", nargs="+", choices=RUNNERS, default=["direct"],
                   help="with 'portable': each size once per runner, side by side "
                   "(scale.json['runners']); the DirectRunner series is left alone")
    p.add_argument("--no-text-encoder", action="store_true",
                   help="leave the TextEncoder out (not Beam; saves a minute per run)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per size")
    p.add_argument("--keep", action="store_true", help="keep each size's working folder")
    p.add_argument(
        "--stall", type=float, default=600, help="end a size whose processes idle this long (s)"
    )
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--render", action="store_true", help="only re-render scale.md from scale.json")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--home", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = run_one(args.child, args.epochs, args.workers, args.home, args.stall,
                         args.runner[0], not args.no_text_encoder)
        Path(args.out).write_text(json.dumps(result, indent=2))
        if result["error"]:  # a stalled pipeline thread would keep the process alive
            os._exit(1)
        return

    out = Path(args.results)
    if args.render:
        print(_write(out, _previous(out / "scale.json"),
                     _previous(out / "scale.json", "runners")))
        return
    out.mkdir(parents=True, exist_ok=True)
    if "portable" in args.runner:
        compare_runners(args, out)
        return
    # Sizes measured before stay in the tables unless this run measures them again.
    results = [r for r in _previous(out / "scale.json") if r["interactions"] not in args.sizes]
    for n in args.sizes:
        print(f"== {n:,} interactions", flush=True)
        results.append(
            run_size(n, args.epochs, args.workers, args.timeout, args.keep, args.stall)
        )
        results.sort(key=lambda r: r["interactions"])
        # Written after every size, so a later size that times out loses nothing.
        _write(out, results, _previous(out / "scale.json", "runners"))
    print(render(results, growth_exponents(results)))


if __name__ == "__main__":
    main()
