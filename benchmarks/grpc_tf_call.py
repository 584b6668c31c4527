"""What any TensorFlow call costs inside a Python gRPC server, apart from the model.

`serving.md`'s overhead target (c=1 p50 minus the gRPC floor minus the
in-process call path, <= 0.3 ms) was missed at 0.405 ms on an idle box in round
4 (0.63 in round 7), with ~0.25 ms that no in-process stage accounts for. This
isolates it: echo servers built like `mtrec serve` (benchmarks/grpc_floor.py),
each answering an empty PredictResponse, differ only in the server (sync or
`grpc.aio`) and in what the handler does first (VARIANTS):

- `empty`: nothing (the floor);
- `spin`: busy-waits 0.25 ms in Python, holding the GIL (Python work of a
  known length);
- `tf`, `tf-direct`, `tf-session`: a trivial TF function (x * 2 + 1 on two
  floats) through its public call, through DirectCall as `mtrec serve` calls a
  signature, or as a v1 Session callable on the calling thread.

The same client (one channel, blocking calls, c=1) takes turns between them,
each handler times its work from inside, and the benchmark process times the
same calls in process after idle gaps of 0, 1 and 10 ms. If a TF call cost in
gRPC what it costs in process, `tf-direct` minus `empty` would equal that
in-process time, as `spin` minus `empty` nearly equals its 0.25 ms.

    .venv/bin/python benchmarks/grpc_tf_call.py   # writes results/grpc_tf_call.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from mtrec.contracts import signatures as S

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpc_floor import SPIN_SECONDS, WORK, WORK_TIMES, EchoServer

RESULTS = Path(__file__).resolve().parent / "results"


# Servers compared, taking turns: label -> (server kind, handler) in grpc_floor.py.
VARIANTS: dict[str, tuple[str, str]] = {
    "empty": ("sync", "empty"),
    "spin": ("sync", "spin"),
    "tf": ("sync", "tf"),
    "tf-direct": ("sync", "tf-direct"),
    "tf-session": ("sync", "tf-session"),
    "aio empty": ("aio", "empty"),
    "aio tf-direct": ("aio", "tf-direct"),
}
# Idle gaps (seconds) before each in-process call: none, about a c=1 gRPC round trip, long.
IDLE_GAPS = (0.0, 1e-3, 1e-2)
CALLS = ("tf", "tf-direct", "tf-session")  # timed in process too (grpc_floor.WORK)


def p50_ms(seconds: list[float]) -> float:
    return round(1e3 * statistics.median(seconds), 3)


def in_process_ms(call: Callable[[], object], calls: int, idle: float) -> dict[str, float]:
    """p50 wall and thread-CPU ms of `call` in this process, each after `idle` seconds."""
    walls, cpus = [], []
    for _ in range(calls):
        if idle:
            time.sleep(idle)
        wall, cpu = time.perf_counter(), time.thread_time()
        call()
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return {"wall": p50_ms(walls), "cpu": p50_ms(cpus)}


def work_times(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> list[float]:
    """The server's p50 [wall, thread CPU] ms of its handler's work since the last ask."""
    ask = predict_pb2.PredictRequest()
    ask.model_spec.name = WORK_TIMES
    times = tf.make_ndarray(stub.Predict(ask).outputs[WORK_TIMES])
    return [round(float(v) / 1e3, 3) for v in times]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(calls: int, rounds: int) -> dict[str, dict]:
    """Per variant, the servers taking turns `rounds` times: c=1 p50 ms (`p50`), the
    server process's CPU us per request (`server_cpu_us`, all its threads), and the
    p50 [wall, thread CPU] ms of a non-empty handler's work inside it (`inside`)."""
    servers = {
        v: EchoServer(threads=8, kind=kind, handler=handler)
        for v, (kind, handler) in VARIANTS.items()
    }
    try:
        stubs = {
            v: prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(s.target))
            for v, s in servers.items()
        }
        request = predict_pb2.PredictRequest()
        request.model_spec.name = S.MODEL_NAME
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        cpu = dict.fromkeys(VARIANTS, 0.0)
        inside: dict[str, list[list[float]]] = {
            v: [] for v, (_, handler) in VARIANTS.items() if handler != "empty"
        }
        for variant, stub in stubs.items():  # warm-up
            for _ in range(50):
                stub.Predict(request)
            if variant in inside:
                work_times(stub)
        for _ in range(rounds):
            for variant, stub in stubs.items():
                cpu[variant] -= cpu_seconds(servers[variant].proc.pid)
                for _ in range(calls):
                    start = time.perf_counter()
                    stub.Predict(request)
                    times[variant].append(time.perf_counter() - start)
                cpu[variant] += cpu_seconds(servers[variant].proc.pid)
                if variant in inside:
                    inside[variant].append(work_times(stub))
        return {
            "p50": {v: p50_ms(t) for v, t in times.items()},
            "server_cpu_us": {v: round(1e6 * c / len(times[v])) for v, c in cpu.items()},
            "inside": {
                v: [round(statistics.median(r[i] for r in rows), 3) for i in (0, 1)]
                for v, rows in inside.items()
            },
        }
    finally:
        for server in servers.values():
            server.stop()


def _added(grpc_p50: dict[str, float]) -> dict[str, float]:
    """Each variant's p50 minus the empty handler's on the same kind of server."""
    return {
        v: round(grpc_p50[v] - grpc_p50["aio empty" if kind == "aio" else "empty"], 3)
        for v, (kind, handler) in VARIANTS.items()
        if handler != "empty"
    }


def _deltas(p50: dict[str, float], after_idle: dict[str, float]) -> dict[str, float]:
    """One run's side-by-side differences (ms; positive: the first named is slower)."""
    added = _added(p50)
    return {
        "spin_beyond": round(added["spin"] - SPIN_SECONDS * 1e3, 3),
        "tf_beyond": round(added["tf"] - after_idle["tf"], 3),
        "direct_beyond": round(added["tf-direct"] - after_idle["tf-direct"], 3),
        "direct_vs_public": round(p50["tf-direct"] - p50["tf"], 3),
        "session_vs_direct": round(p50["tf-session"] - p50["tf-direct"], 3),
        "aio_vs_sync_empty": round(p50["aio empty"] - p50["empty"], 3),
        "aio_vs_sync_direct": round(p50["aio tf-direct"] - p50["tf-direct"], 3),
    }


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _inside_vs_idle(inside: dict, idle: dict) -> str:
    """The calls' own thread CPU inside the server against in process after 1 ms idle.

    On a loaded box (load 5-7) the two matched, so the slowdown looked like the
    idle gap; on an idle one (load 0.3-1) the server's was 3-4x the in-process
    one, so the request path around the call slows it, not the gap alone.
    Computed, so the sentence follows the run.
    """
    ratios = [
        f"{call} {inside[call][1]} against {idle[call]['1']['cpu']} ms "
        f"({inside[call][1] / idle[call]['1']['cpu']:.1f}x)"
        for call in ("tf-direct", "tf-session")
        if call in inside and call in idle
    ]
    return (
        "The calls' own thread CPU inside the server against in process after 1 ms idle: "
        + "; ".join(ratios)
        + "."
    )


def markdown(result: dict) -> str:
    runs = result["runs"]
    g, extra, inside = (
        result["grpc_c1_p50_ms"],
        result["added_over_empty_ms"],
        result["work_in_server_ms"],
    )
    idle = result["in_process_ms"]
    lines = [
        "# A TensorFlow call inside a Python gRPC server",
        "",
        f"Host: {result['host']}; load average {result['loadavg_start']} at the start, "
        f"{result['loadavg_end']} at the end. {len(runs)} runs, each starting the "
        f"{len(VARIANTS)} servers afresh and giving each {result['calls']} calls x "
        f"{result['rounds']} rounds, taking turns (benchmarks/grpc_tf_call.py; "
        "`grpc_floor.py --server --handler`). Medians over the runs, each run in brackets. "
        "Server CPU: the server process's, all its threads, per request (/proc, 10 ms ticks).",
        "",
        "| server, handler before answering | gRPC c=1 p50 ms | added over the same server's "
        "`empty` ms | the work inside the server: p50 wall / thread CPU ms | server CPU us a "
        "request |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for variant in VARIANTS:
        work = inside.get(variant)
        lines.append(
            f"| {variant} | {g[variant]} ({', '.join(str(r['p50'][variant]) for r in runs)}) | "
            f"{extra.get(variant, '–')} | "
            + (f"{work[0]} / {work[1]}" if work else "–")
            + f" | {result['server_cpu_us_per_request'][variant]} |"
        )
    lines += [
        "",
        "The same calls in this process, p50 wall / thread CPU ms, each after an idle gap:",
        "",
        "| call | " + " | ".join(f"after {k} ms idle" for k in idle["tf"]) + " |",
        "| --- | " + " | ".join("---:" for _ in idle["tf"]) + " |",
    ]
    lines += [
        f"| {call} | " + " | ".join(f"{v['wall']} / {v['cpu']}" for v in by_gap.values()) + " |"
        for call, by_gap in idle.items()
    ]
    d = {
        k: f"{v['median']} ms ({', '.join(map(str, v['runs']))})"
        for k, v in result["deltas_ms"].items()
    }
    lines += [
        "",
        "Side by side in each run, c=1 p50, median (each run); positive: the first is slower:",
        "",
        f"- beyond its own in-process time after 1 ms idle, over gRPC: Python work "
        f"({SPIN_SECONDS * 1e3:.2f} ms spin) {d['spin_beyond']}, the public TF call "
        f"{d['tf_beyond']}, the call `mtrec serve` makes (DirectCall) {d['direct_beyond']};",
        f"- DirectCall against the public call: {d['direct_vs_public']};",
        f"- the Session callable (one C call, ops on the caller's thread) against DirectCall: "
        f"{d['session_vs_direct']}; in process after 1 ms idle "
        f"{result['session_vs_direct_in_process_ms']} ms;",
        f"- `grpc.aio` against the sync server: {d['aio_vs_sync_empty']} with the empty "
        f"handler, {d['aio_vs_sync_direct']} with DirectCall.",
        "",
        _inside_vs_idle(inside, idle) + " Tried in "
        "throwaway variants of the DirectCall server (2026-12-02, box under load 5-7), three "
        "runs each against it: TF's "
        "single-threaded executor (`tf.experimental.function_executor_type` on each RPC "
        "thread) +0.061, +0.034, -0.104 ms; TF's thread pools without spinning "
        "(`disable_thread_spinning`, a private context setting) +0.055, +0.027, -0.102 ms. "
        "Tried before on the public-call server, none moving its p50 by more than 0.05 ms: "
        "the single-threaded executor, 1 gRPC worker thread instead of 8, intra-op threads "
        "1, inter-op threads 2, Python's switch interval 0.1 ms, the call made on one "
        "dedicated Python thread.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Short turns, many rounds: the box's load drifts within seconds.
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="runs, fresh servers each")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    tf.config.threading.set_inter_op_parallelism_threads(1)  # as the servers (and `mtrec serve`)
    load_start = [round(v, 2) for v in os.getloadavg()]
    runs = [measure(args.calls, args.rounds) for _ in range(args.repeats)]
    in_process = {}
    for name in CALLS:
        call = WORK[name]()
        in_process[name] = {
            f"{1e3 * gap:g}": in_process_ms(call, 300 if gap < 5e-3 else 100, gap)
            for gap in IDLE_GAPS
        }
    after_idle = {name: by_gap["1"]["wall"] for name, by_gap in in_process.items()}
    grpc_p50 = {v: _median([r["p50"][v] for r in runs]) for v in VARIANTS}
    per_run = [_deltas(r["p50"], after_idle) for r in runs]
    result = {
        "grpc_c1_p50_ms": grpc_p50,
        "added_over_empty_ms": _added(grpc_p50),
        "work_in_server_ms": {
            v: [_median([r["inside"][v][i] for r in runs]) for i in (0, 1)]
            for v in runs[0]["inside"]
        },
        "server_cpu_us_per_request": {
            v: round(statistics.median(r["server_cpu_us"][v] for r in runs)) for v in VARIANTS
        },
        "in_process_ms": in_process,
        "deltas_ms": {
            k: {"median": _median([d[k] for d in per_run]), "runs": [d[k] for d in per_run]}
            for k in per_run[0]
        },
        "session_vs_direct_in_process_ms": round(
            after_idle["tf-session"] - after_idle["tf-direct"], 3
        ),
        "runs": runs,
        "calls": args.calls,
        "rounds": args.rounds,
        "repeats": args.repeats,
        "host": f"{platform.machine()}, {os.cpu_count()} CPUs, TF {tf.__version__}, "
        f"grpcio {grpc.__version__}",
        "loadavg_start": load_start,
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "command": "python benchmarks/grpc_tf_call.py " + " ".join(argv or sys.argv[1:]),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grpc_tf_call.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "grpc_tf_call.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
