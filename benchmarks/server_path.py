"""Where a Predict request's time and CPU go inside the server, stage by stage.

Manual timers around each step the server takes for one request (the same
calls `mtrec serve` makes, in its order), in one process with the server's TF
threading (inter-op 1):

    parse       PredictRequest.FromString (gRPC's deserializer)
    decode      signature look-up, output filter, validation, TensorProto -> numpy
    tensors     numpy -> eager tensors
    model       the signature's graph (serving/direct_call.py, one runtime call)
    numpy       output tensors -> numpy
    encode      numpy -> the response's TensorProtos
    serialize   PredictResponse.SerializeToString (gRPC's serializer)

For the model stage it also records the CPU of the calling thread and of the
whole process: TF runs a function's kernels on its inter-op pool, so most of
the model's CPU is on a TF thread while the calling (RPC) thread waits; and it
times the same call after the process sat idle for 3 ms, as every request does
at c=1 over gRPC (the client's round trip leaves the server idle): the
difference is what waking TF's threads costs on this machine at this load.

    python benchmarks/server_path.py --model-dir <version dir>
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from mtrec.serving import tensor_codec
from mtrec.serving.model_manager import Servable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_load import make_requests  # noqa: E402

STAGES = ("parse", "decode", "tensors", "model", "numpy", "encode", "serialize")
IDLE_S = 0.003


def _one(servable: Servable, wire: bytes) -> tuple[list[float], float, float]:
    """Stage wall times [s] of one request, and the model stage's process/thread CPU."""
    t = [time.perf_counter()]
    request = predict_pb2.PredictRequest.FromString(wire)
    t.append(time.perf_counter())
    sig = servable.signature(request.model_spec.signature_name)
    outputs = sig.check_output_filter(request.output_filter)
    arrays = sig.decode_inputs(request.inputs)
    t.append(time.perf_counter())
    tensors = sig.to_tensors(arrays)
    t.append(time.perf_counter())
    cpu0, thread0 = time.process_time(), time.thread_time()
    flat = sig.call_flat(tensors)
    cpu, thread = time.process_time() - cpu0, time.thread_time() - thread0
    t.append(time.perf_counter())
    result = {key: value.numpy() for key, value in flat.items() if key in outputs}
    t.append(time.perf_counter())
    response = predict_pb2.PredictResponse()
    for key, value in result.items():
        tensor_codec.encode_into(response.outputs[key], value)
    t.append(time.perf_counter())
    response.SerializeToString()
    t.append(time.perf_counter())
    return list(np.diff(t)), cpu, thread


def profile(model_dir: str, requests: list[predict_pb2.PredictRequest], calls: int
            ) -> dict[str, Any]:
    """Per-stage p50/mean in microseconds for these requests (one signature)."""
    servable = Servable("mtrec", 1, model_dir)
    wires = [r.SerializeToString() for r in requests]
    for wire in wires:  # warm: first calls trace and allocate
        _one(servable, wire)
    rows, cpu, thread, idle = [], 0.0, 0.0, []
    for i in range(calls):
        stages, c, th = _one(servable, wires[i % len(wires)])
        rows.append(stages)
        cpu += c
        thread += th
        if i % 4 == 0:  # a request arriving at an idle server, as at c=1 over gRPC
            time.sleep(IDLE_S)
            idle.append(_one(servable, wires[i % len(wires)])[0][STAGES.index("model")])
    arr = np.array(rows) * 1e6
    stages_us = {
        name: {"p50_us": round(float(np.median(arr[:, j])), 1),
               "mean_us": round(float(arr[:, j].mean()), 1)}
        for j, name in enumerate(STAGES)
    }
    return {
        "calls": calls,
        "stages": stages_us,
        "total_p50_us": round(float(np.median(arr.sum(axis=1))), 1),
        "model_cpu_us_per_call": round(cpu / calls * 1e6, 1),
        "model_calling_thread_cpu_us": round(thread / calls * 1e6, 1),
        "model_after_idle_p50_us": round(float(np.median(idle)) * 1e6, 1),
        "idle_ms": IDLE_S * 1e3,
    }


def markdown(profiles: dict[str, dict[str, Any]]) -> list[str]:
    sigs = list(profiles)
    lines = [
        "| stage (in the server's order) | " + " | ".join(f"{s} p50 us" for s in sigs) + " |",
        "| --- | " + " | ".join("---:" for _ in sigs) + " |",
    ]
    for name in STAGES:
        lines.append(f"| {name} | "
                     + " | ".join(str(profiles[s]["stages"][name]["p50_us"]) for s in sigs) + " |")
    for key, label in (
        ("total_p50_us", "all stages, back-to-back calls"),
        ("model_cpu_us_per_call", "model stage: CPU of the whole process per call"),
        ("model_calling_thread_cpu_us", "model stage: CPU of the calling (RPC) thread"),
        ("model_after_idle_p50_us", "model stage after 3 ms idle (each c=1 gRPC request)"),
    ):
        lines.append(f"| {label} | " + " | ".join(str(profiles[s][key]) for s in sigs) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(1)  # as `mtrec serve`
    requests = make_requests(args.model_dir, [str(i) for i in range(1, 33)])
    out = {sig: profile(args.model_dir, reqs, args.calls) for sig, reqs in requests.items()}
    print(json.dumps(out, indent=1))
    print("\n".join(markdown(out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
