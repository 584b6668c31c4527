"""A Beam stage on the portable runner with 2 external worker pools equals the local runner's.

TFDV statistics (StatisticsGen's Beam work) over tiny examples: run once
in-process, then once through each worker-pool process (pipeline/beam_portable.py),
and the statistics must agree.
"""

from __future__ import annotations

import os
import socket

import pytest
import tensorflow_data_validation as tfdv
from apache_beam.options.pipeline_options import PipelineOptions

from mtrec.data import generate
from mtrec.data.examples import write_examples
from mtrec.pipeline import beam_portable, configs


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    out = tmp_path_factory.mktemp("portable")
    write_examples(generate(n_users=20, n_items=30, n_ratings=300, seed=2), out)
    return str(out / "train" / "*")


def _stats(pattern: str, args: list[str], out: str):
    stats = tfdv.generate_statistics_from_tfrecord(
        pattern, output_path=out, pipeline_options=PipelineOptions(args))
    (dataset,) = stats.datasets
    def summary(f):
        common = (f.num_stats if f.HasField("num_stats") else f.string_stats).common_stats
        return (common.num_non_missing, round(f.num_stats.mean, 6), f.num_stats.max,
                f.string_stats.unique)

    return dataset.num_examples, {f.path.step[0]: summary(f) for f in dataset.features}


def test_statistics_on_two_external_pools_equal_the_local_runners(examples, tmp_path):
    direct = _stats(examples, [f"--runner={configs.LOCAL_RUNNER}"], str(tmp_path / "direct"))
    assert direct[0] > 0
    log = tmp_path / "pools.log"
    with open(log, "wb") as out, beam_portable.worker_pools(2, output=out) as ports:
        assert len(set(ports)) == 2
        for i, port in enumerate(ports):
            portable = _stats(examples, beam_portable.beam_args(port),
                              str(tmp_path / f"portable-{i}"))
            assert portable == direct
    # One SDK worker per job: the embedded job service runs no more (beam_portable.py).
    assert log.read_text().count("Starting worker") == len(ports)
    for port in ports:  # torn down: nothing listens any more
        with socket.socket() as s:
            assert s.connect_ex(("localhost", port)) != 0
    assert os.path.exists(tmp_path / "portable-1")
