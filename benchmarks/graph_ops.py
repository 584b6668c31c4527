"""Where a signature's graph time goes, op by op: RunMetadata step stats on one thread.

    python benchmarks/graph_ops.py <model dir> [--signature recommend] [--top 25]

Loads the SavedModel into a v1 Session (inter- and intra-op pools of one
thread, so op times add up instead of overlapping), calls the signature for
user "1" (k=10 where it takes k) `--calls` times with FULL_TRACE and prints the
nodes executed per call, the summed op time per call and the costliest nodes.
Nested functions the Session does not inline (tf.Transform's layer) show as
one node. It measures op time, not what a call costs in a server: that adds
TF's per-call runtime (benchmarks/serving.py's in-process rows). Used for the
"model graph" table in benchmarks/results/serving.md.
"""

from __future__ import annotations

import argparse
import collections
import sys

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import tensorflow as tf


def profile(model_dir: str, signature: str, calls: int) -> tuple[float, float, collections.Counter]:
    """(nodes per call, op us per call, {node name: op us per call})."""
    graph = tf.Graph()
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1,
                                      intra_op_parallelism_threads=1)
    with graph.as_default(), tf.compat.v1.Session(graph=graph, config=config) as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], model_dir)
        sig = meta.signature_def[signature]
        feeds: dict[str, list[bytes] | int] = {sig.inputs["user_id"].name: [b"1"]}
        if "k" in sig.inputs:
            feeds[sig.inputs["k"].name] = 10
        fetches = {k: v.name for k, v in sig.outputs.items()}
        for _ in range(50):  # warm up
            sess.run(fetches, feeds)
        ops: collections.Counter = collections.Counter()
        nodes = 0
        options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
        for _ in range(calls):
            run_metadata = tf.compat.v1.RunMetadata()
            sess.run(fetches, feeds, options=options, run_metadata=run_metadata)
            for device in run_metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    ops[node.node_name] += node.op_end_rel_micros - node.op_start_rel_micros
                    nodes += 1
    per_call = collections.Counter({k: v / calls for k, v in ops.items()})
    return nodes / calls, sum(per_call.values()), per_call


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--signature", default="recommend")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    tf.compat.v1.disable_eager_execution()
    nodes, total, ops = profile(args.model_dir, args.signature, args.calls)
    print(f"{args.signature}: {nodes:.0f} nodes a call, {total:.0f} us of op time a call")
    for name, us in ops.most_common(args.top):
        print(f"{us:8.1f} us  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
