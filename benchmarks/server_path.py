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

That is the numpy path (batching on). With batching off the server takes the
wire path (serving/wire.py): the model stage's function also serializes each
output to a TensorProto, `numpy` fetches those bytes, `encode` frames them
into the response bytes and `serialize` is empty.

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
import os
import sys
import time
from pathlib import Path
from typing import Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from mtrec.contracts import signatures as S
from mtrec.serving import tensor_codec
from mtrec.serving.model_manager import Servable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_load import make_requests

STAGES = ("parse", "decode", "tensors", "model", "numpy", "encode", "serialize")
IDLE_S = 0.003


def _one(servable: Servable, wire: bytes, serialized: bool = True
         ) -> tuple[list[float], list[float], float]:
    """One request: wall [s] and calling-thread CPU [s] per stage, and the model
    stage's CPU over the whole process [s]; `serialized`: the server's wire path
    (serving/wire.py, batching off), else the numpy path (batching on)."""
    wall, cpu = [time.perf_counter()], [time.thread_time()]

    def mark() -> None:
        wall.append(time.perf_counter())
        cpu.append(time.thread_time())

    request = predict_pb2.PredictRequest.FromString(wire)
    mark()
    sig = servable.signature(request.model_spec.signature_name)
    outputs = sig.check_output_filter(request.output_filter)
    arrays = sig.decode_inputs(request.inputs)
    mark()
    tensors = sig.to_tensors(arrays)
    mark()
    process0 = time.process_time()
    if serialized:  # serving/wire.py: the outputs come back as TensorProto bytes
        flat = sig.call_serialized(tensors)
        process = time.process_time() - process0
        mark()
        protos = {key: flat[key].numpy() for key in outputs}
        mark()
        sig.wire_response(protos, outputs, servable.name, servable.version)
        mark()
        mark()  # nothing left to serialize
        return list(np.diff(wall)), list(np.diff(cpu)), process
    flat = sig.call_flat(tensors)
    process = time.process_time() - process0
    mark()
    result = {key: value.numpy() for key, value in flat.items() if key in outputs}
    mark()
    response = predict_pb2.PredictResponse()
    for key, value in result.items():
        tensor_codec.encode_into(response.outputs[key], value)
    mark()
    response.SerializeToString()
    mark()
    return list(np.diff(wall)), list(np.diff(cpu)), process


def profile(model_dir: str, requests: list[predict_pb2.PredictRequest], calls: int,
            serialized: bool = True) -> dict[str, Any]:
    """Per-stage p50/mean in microseconds for these requests (one signature), on the
    server's wire path (`serialized`, batching off) or its numpy path."""
    servable = Servable(S.MODEL_NAME, 1, model_dir)
    serialized = serialized and servable.signature(
        requests[0].model_spec.signature_name).serializes
    wires = [r.SerializeToString() for r in requests]
    for wire in wires:  # warm: first calls trace and allocate
        _one(servable, wire, serialized)
    walls, cpus, process, idle = [], [], 0.0, []
    model = STAGES.index("model")
    for i in range(calls):
        wall, cpu, proc = _one(servable, wires[i % len(wires)], serialized)
        walls.append(wall)
        cpus.append(cpu)
        process += proc
        if i % 4 == 0:  # a request arriving at an idle server, as at c=1 over gRPC
            time.sleep(IDLE_S)
            idle.append(_one(servable, wires[i % len(wires)], serialized)[0][model])
    wall_us, cpu_us = np.array(walls) * 1e6, np.array(cpus) * 1e6
    stages_us = {
        name: {"wall_p50_us": round(float(np.median(wall_us[:, j])), 1),
               "thread_cpu_mean_us": round(float(cpu_us[:, j].mean()), 1)}
        for j, name in enumerate(STAGES)
    }
    return {
        "calls": calls,
        "path": "wire (serving/wire.py)" if serialized else "numpy",
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "stages": stages_us,
        "total_wall_p50_us": round(float(np.median(wall_us.sum(axis=1))), 1),
        "total_thread_cpu_mean_us": round(float(cpu_us.sum(axis=1).mean()), 1),
        "model_process_cpu_mean_us": round(process / calls * 1e6, 1),
        "model_after_idle_wall_p50_us": round(float(np.median(idle)) * 1e6, 1),
        "idle_ms": IDLE_S * 1e3,
    }


def markdown(profiles: dict[str, dict[str, Any]]) -> list[str]:
    """Wall p50 and calling-thread CPU per stage: on a loaded machine wall time
    includes waiting for a core, the thread's CPU does not."""
    sigs = list(profiles)
    lines = [
        "| stage (in the server's order) | "
        + " | ".join(f"{s} wall p50 us | {s} thread CPU us" for s in sigs) + " |",
        "| --- | " + " | ".join("---: | ---:" for _ in sigs) + " |",
    ]
    for name in STAGES:
        cells = [f"{profiles[s]['stages'][name]['wall_p50_us']} | "
                 f"{profiles[s]['stages'][name]['thread_cpu_mean_us']}" for s in sigs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells = [f"{profiles[s]['total_wall_p50_us']} | {profiles[s]['total_thread_cpu_mean_us']}"
             for s in sigs]
    lines.append("| all stages, back-to-back requests | " + " | ".join(cells) + " |")
    cells = [f"{profiles[s]['model_after_idle_wall_p50_us']} | "
             f"{profiles[s]['model_process_cpu_mean_us']} (whole process)" for s in sigs]
    lines.append(f"| model after {profiles[sigs[0]]['idle_ms']:g} ms idle (as every c=1 gRPC "
                 "request); process CPU of the model stage | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(1)  # as `mtrec serve`
    requests = make_requests(args.model_dir, [str(i) for i in range(1, 33)])
    out = {sig: profile(args.model_dir, reqs, args.calls) for sig, reqs in requests.items()}
    numpy_path = {sig: profile(args.model_dir, requests[sig], args.calls, serialized=False)
                  for sig in ("recommend",)}
    print(json.dumps({"wire": out, "numpy": numpy_path}, indent=1))
    print("\n".join(markdown(out)))
    print("\n".join(markdown(numpy_path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
