"""End-to-end: the real TFX pipeline on a tiny synthetic sample (LocalDagRunner + Beam).

Like TFX's penguin_pipeline_local_e2e_test: count MLMD executions, re-run from
the cache, and check that an impossible threshold pushes nothing. One run, shared
by every test here; inputs that stop a run or reach a push without users or items
have their own runs in test_pipeline_e2e_inputs.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mtrec.add_items import add_items
from mtrec.cli import _add_titles
from mtrec.components.atomic_pusher.executor import extended_identity, model_identity
from mtrec.components.text_encoder.corpus import item_text
from mtrec.data.artifact_io import read_split, split_dir
from mtrec.pipeline.home_lock import LOCK_FILE
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.prune import prune
from mtrec.run_state import custom_property, latest_run
from mtrec.serving import cli as serving_cli
from mtrec.summary import collect, render
from tests import _serving_support as support
from tests import e2e_support as e2e

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("pipeline")
    paths = LocalPaths(str(home))
    examples_root = e2e.examples(home / "examples")
    return paths, examples_root, e2e.run_pipeline(paths, examples_root)


def test_every_component_runs_and_one_version_is_pushed(first_run):
    paths, _, nodes = first_run
    assert set(nodes) >= e2e.EVERY_COMPONENT
    assert {nodes[c].state for c in e2e.EVERY_COMPONENT} == {"COMPLETE"}
    versions = e2e.versions(paths)
    assert len(versions) == 1 and versions[0].isdigit()
    pushed = nodes["AtomicPusher"].outputs["pushed_model"][0]
    assert custom_property(pushed, "pushed") == 1


def test_console_shows_each_component_and_epoch_in_few_lines(first_run):
    paths, _, _ = first_run
    out = e2e.console_text(paths)
    lines = out.splitlines()
    # `mtrec run` adds its summary (about 12 lines) to these: 60 in all at most.
    assert len(lines) <= 48, out
    assert "Traceback" not in out and "WARNING" not in out
    for component in e2e.EVERY_COMPONENT:
        assert f"] {component} done in " in out, component
    for slow in ("TextEncoder", "Transform", "Trainer"):
        assert out.index(f"] {slow} started") < out.index(f"] {slow} done in "), slow
    epochs = [line for line in lines if "] Trainer epoch " in line]
    assert len(epochs) == e2e.MODEL["epochs"]
    # Training computes losses only: no metric shows as an uncomputed zero.
    assert "0.000 " not in out and "e+00" not in out
    for line in epochs:
        train, validation = line.split(" | val ")[:2]
        assert "(weighted; per task: interest " in train and "relevance_auc" in validation, line
    assert "TextEncoder MLM step 60/60" in out


def test_local_beam_components_do_not_package_tfx(first_run):
    """TFX's Beam executors would each copy TFX into a new /tmp folder and build an
    sdist of it for remote workers (pipeline/tfx_packaging.py); its absl log line
    says when. The run's Beam components still ran (the test above)."""
    paths, _, _ = first_run
    with open(os.path.join(paths.home, "logs", "run.log")) as f:
        log = f.read()
    assert "Transform" in log
    assert "Attempting to infer TFX Python dependency" not in log
    assert "tfx_ephemeral" not in log


def test_catalogue_holds_every_item_and_the_text_encoder_fed_the_trainer(first_run):
    _, _, nodes = first_run
    run_dir = nodes["Trainer"].outputs["model_run"][0].uri
    with open(os.path.join(run_dir, "training_metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["catalog_size"] == 200  # rated or not
    assert metrics["text_encoder"] is True


def test_summary_shows_what_the_trainer_and_the_text_encoder_recorded(first_run):
    """The summary reads training_metrics.json and the encoder's metadata.json by
    their keys: a key renamed on the writing side drops or breaks its line."""
    _, _, nodes = first_run
    text = render(collect(nodes))
    assert re.search(rf"^training: \d+ examples, {e2e.MODEL['epochs']} epochs, fit [\d.]+s \+ "
                     r"[\d.]+s scan, build, evaluate, export, catalogue \d+ items, "
                     r"split protocol \w+", text, re.M), text
    assert re.search(r"^text encoder: .+ \(\w+\), [\d,]+ params, \d+-d, encoded \d+ items "
                     r"in [\d.]+s.*, MLM \d+ steps in \d+s, loss [\d.]+ -> [\d.]+$",
                     text, re.M), text


def test_trainer_wrote_tensorboard_logs_for_every_epoch(first_run):
    _, _, nodes = first_run
    logs = os.path.join(nodes["Trainer"].outputs["model_run"][0].uri, "tensorboard")
    for phase in ("train", "validation"):
        events = tf.io.gfile.glob(os.path.join(logs, phase, "events.out.tfevents.*"))
        assert events, f"no TensorBoard events under {logs}/{phase}"
        steps = {
            event.step
            for path in events
            for event in tf.compat.v1.train.summary_iterator(path)
            for value in event.summary.value
            if value.tag == "epoch_loss"
        }
        assert steps == set(range(e2e.MODEL["epochs"])), (phase, steps)


def test_retrieval_evaluator_measured_model_and_popularity(first_run):
    # A tiny sample and 8 epochs: the model only has to be ahead here;
    # tests/test_quality_synthetic.py checks that it is clearly ahead.
    _, _, nodes = first_run
    blessing = nodes["RetrievalEvaluator"].outputs["blessing"][0]
    assert custom_property(blessing, "blessed") == 1
    for k in (50, 100):
        model = custom_property(blessing, f"hit_rate_at_{k}")
        popularity = custom_property(blessing, f"popularity_hit_rate_at_{k}")
        assert model > popularity, (k, model, popularity)


def test_pushed_model_loads_in_a_fresh_process_without_mtrec(first_run):
    paths, examples_root, _ = first_run
    model_dir = os.path.join(paths.serving_model_dir, e2e.versions(paths)[0])
    script = textwrap.dedent(
        f"""
        import json, sys, tensorflow as tf
        m = tf.saved_model.load({model_dir!r})
        out = m.signatures["recommend"](user_id=tf.constant(["u1", "never-seen"]), k=tf.constant(3))
        assert out["item_ids"].shape == (2, 3), out
        assert "mtrec" not in sys.modules
        # Cold start: the text encoder pushed alongside (TF Text ops), then the model.
        import tensorflow_text
        enc = tf.saved_model.load({model_dir!r} + "/assets.extra/text_encoder")
        # The item's text, and its description alone (the encoder's two signatures).
        text = tf.constant(["a brand new film | drama | 2024 | a quiet love story"])
        vec = enc.signatures["serving_default"](text=text)["embedding"]
        said = enc.signatures["description"](text=tf.constant(["a quiet love story"]))
        new = m.signatures["embed_new_item"](
            item_id=tf.constant(["brand-new"]), title=tf.constant(["A Brand New Film"]),
            genres=tf.constant([["Drama", ""]]), description=tf.constant(["a quiet love story"]),
            year=tf.constant([2024], tf.int64), text_embedding=vec,
            description_embedding=said["embedding"])["embedding"]
        assert new.shape[0] == 1 and bool(tf.reduce_all(tf.math.is_finite(new)))
        print(sorted(m.signatures))
        # Titles for people: every catalogue item's, then an unknown id and the padding.
        ids = [i.decode() for i in m.catalog_ids.numpy()] + ["never-seen", ""]
        titles = m.signatures["describe_items"](item_ids=tf.constant([ids]))["titles"]
        print("TITLES" + json.dumps(dict(zip(ids, [t.decode() for t in titles.numpy()[0]]))))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recommend" in done.stdout and "serving_default" in done.stdout
    served = json.loads(done.stdout.split("TITLES", 1)[1])
    assert (served.pop("never-seen"), served.pop("")) == ("", "")
    # The catalogue's titles as the run summary shows them ("Title (Year)").
    assert served == _summary_titles(list(served), examples_root)
    assert all(re.fullmatch(r".+ \(\d{4}\)", title) for title in served.values()), served


def _summary_titles(item_ids: list[str], examples_root: str) -> dict[str, str]:
    """Each item's title as the run summary reads it from the catalogue examples."""
    items = [{"item_id": item} for item in item_ids]
    _add_titles(items, examples_root)
    return {it["item_id"]: it["title"] for it in items}


def test_query_shows_each_items_title(first_run, capsys):
    """`mtrec query` against the pushed model: each returned item has its title after its
    id (describe_items); an id outside the catalogue has the title ""."""
    paths, examples_root, _ = first_run
    srv = support.start_server(paths.serving_model_dir)
    try:
        srv.manager.wait_for_version(int(e2e.versions(paths)[0]), timeout=120)
        answers = []
        for query in (["recommend", "--user", "u1", "-k", "5"],
                      ["recommend-from-items", "--items", "i1", "i2", "-k", "5"],
                      ["score", "--user", "u1", "--items", "never-seen"]):
            assert serving_cli.main(["query", *query, "--target", srv.target]) == 0
            answers.append(json.loads(capsys.readouterr().out)["items"])
    finally:
        srv.stop()
    recommended = [it for answer in answers[:2] for it in answer]
    assert len(recommended) == 10
    assert all(list(it)[:2] == ["item_id", "title"] for it in recommended), recommended
    shown = {it["item_id"]: it["title"] for it in recommended}
    assert shown == _summary_titles(list(shown), examples_root) and all(shown.values())
    assert [(it["item_id"], it["title"]) for it in answers[2]] == [("never-seen", "")]


def test_add_items_twice_serves_both_batches(first_run, tmp_path, monkeypatch, capsys):
    """`mtrec add-items` re-indexes the served run's model without retraining; a
    second call keeps the first call's items, and no work folder is left."""
    paths, _, nodes = first_run
    home = tmp_path / "home"  # a copy of the run's MLMD; its artifacts stay in place
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    shutil.copy(paths.metadata_path, home / "metadata.sqlite")
    versions = []
    for item, title in (("new-1", "A First New Film"), ("new-2", "A Second New Film")):
        csv = tmp_path / f"{item}.csv"
        csv.write_text(f"item_id,title,genres,description,year\n"
                       f"{item},{title},Drama,a quiet story,2024\n")
        versions.append(add_items(str(home), str(csv)))
    said = capsys.readouterr().out.splitlines()
    # The second file again, as written: nothing new, so nothing is pushed.
    assert add_items(str(home), str(tmp_path / "new-2.csv")) == versions[1]
    assert capsys.readouterr().out.splitlines()[-1].startswith("nothing new: the served model")
    served = [set(tf.saved_model.load(v).catalog_ids.numpy()) for v in versions]
    original = set(tf.saved_model.load(paths.serving_model_dir + "/" + e2e.versions(paths)[0])
                   .catalog_ids.numpy())
    assert served[0] == original | {b"new-1"}
    assert said[-1] == (f"catalogue now {len(original) + 2} items (2 added since the run); "
                        f"pushed home/serving_model/mtrec/{os.path.basename(versions[1])}")
    assert served[1] == original | {b"new-1", b"new-2"}
    # An added item is indexed as embed_new_item embeds it from the pushed encoder's
    # vectors of its text and of its description alone (README's two calls).
    model = tf.saved_model.load(versions[1])
    encoder = tf.saved_model.load(versions[1] + "/assets.extra/text_encoder")
    text = item_text("A First New Film", ["Drama"], "a quiet story", 2024)
    vector = encoder.signatures["serving_default"](text=tf.constant([text]))["embedding"]
    said = encoder.signatures["description"](text=tf.constant(["a quiet story"]))["embedding"]
    new = model.signatures["embed_new_item"](
        item_id=tf.constant(["new-1"]), title=tf.constant(["A First New Film"]),
        genres=tf.constant([["Drama"]]), description=tf.constant(["a quiet story"]),
        year=tf.constant([2024], tf.int64), text_embedding=vector,
        description_embedding=said)["embedding"]
    indexed = model.signatures["embed_item"](item_id=tf.constant(["new-1"]))["embedding"]
    np.testing.assert_allclose(new.numpy(), indexed.numpy(), atol=1e-4)
    assert model.cold_map_coef.shape[0] == 2 * vector.shape[1]  # the description block
    # Their titles are served too, next to the trained items' (describe_items).
    titles = tf.saved_model.load(versions[1]).signatures["describe_items"](
        item_ids=tf.constant([["new-1", "new-2", sorted(original)[0].decode()]]))["titles"]
    assert [t.decode() for t in titles.numpy()[0][:2]] == [
        "A First New Film (2024)", "A Second New Film (2024)"]
    assert titles.numpy()[0][2]
    # Marked as extensions of the pushed model: a re-run pushing it again keeps them served
    # (components/atomic_pusher/executor_test.py).
    pushed = model_identity(paths.serving_model_dir + "/" + e2e.versions(paths)[0])
    assert pushed and [extended_identity(v) for v in versions] == [pushed, pushed]
    assert sorted(p.name for p in home.iterdir()) == [  # and no temporary folder
        LOCK_FILE, "added_items", "metadata.sqlite", "serving_model"]
    # A trained item's row would replace its features, and so its vector: refused.
    trained = sorted(original)[0].decode()
    (tmp_path / "known.csv").write_text(f"item_id,title\n{trained},Renamed\nnew-3,Third\n")
    with pytest.raises(ValueError, match=rf"1 item id\(s\) already in the catalogue .*{trained}"):
        add_items(str(home), str(tmp_path / "known.csv"))
    assert len(list((home / "serving_model" / "mtrec").iterdir())) == 2
    assert sorted(p.name for p in home.iterdir()) == [  # and no temporary folder
        LOCK_FILE, "added_items", "metadata.sqlite", "serving_model"]


def test_report_is_rebuilt_from_the_run_without_retraining(first_run):
    """`mtrec report HOME` on the real run: every section and plot, read from MLMD."""
    from mtrec.cli import main
    from tests.test_report import parse_report

    paths, _, nodes = first_run
    assert main(["report", paths.home]) == 0
    page = (Path(paths.home) / "report.html").read_text(encoding="utf-8")
    parsed = parse_report(page)
    alts = " ".join(alt for _, alt in parsed.images)
    for plot in ("pipeline timeline", "rating histogram", "loss curves", "HR@K vs popularity",
                 "masked-LM loss", "genre interest"):
        assert plot in alts, plot
    assert all(node in page for node in e2e.EVERY_COMPONENT)
    assert "blessed: every TFMA threshold passed" in page
    assert latest_run(paths.metadata_path)["Trainer"].state == "COMPLETE"  # nothing re-ran


def test_second_run_comes_from_cache_and_impossible_threshold_pushes_nothing(first_run):
    paths, examples_root, _ = first_run
    cached = e2e.run_pipeline(paths, examples_root)
    # Both evaluators run again because they now have a baseline (the first run's
    # blessed model); the Pusher re-runs but recognises the model it pushed.
    rerun = {"Evaluator", "RetrievalEvaluator", "AtomicPusher"}
    assert {cached[c].state for c in e2e.EVERY_COMPONENT - rerun} == {"CACHED"}
    assert all(f"] {c} CACHED in " in e2e.console_text(paths) for c in e2e.EVERY_COMPONENT - rerun)
    assert len(e2e.versions(paths)) == 1
    assert "(already served: no new version)" in render(collect(cached))

    strict = e2e.run_pipeline(paths, examples_root, rating_rmse_max=0.0)
    assert strict["Trainer"].state == "CACHED"
    assert strict["Evaluator"].state == "COMPLETE"
    assert custom_property(strict["Evaluator"].outputs["blessing"][0], "blessed") == 0
    assert re.search(r"TFMA gate failed: rating RMSE \d\.\d{4} > 0\n", render(collect(strict)))
    # The Pusher reads TFMA's blessing (TFX's Pusher contract) and pushes nothing.
    assert custom_property(strict["AtomicPusher"].outputs["pushed_model"][0], "pushed") == 0
    assert len(e2e.versions(paths)) == 1

    # An impossible retrieval bound: the first gate refuses, so TFMA does not run
    # (its blessing would make this model the next run's baseline) nor the Pusher.
    refused = e2e.run_pipeline(paths, examples_root,
                               retrieval={"ndcg@10_lift": 100.0})  # 101x popularity
    assert refused["RetrievalEvaluator"].state == "COMPLETE"
    blessing = refused["RetrievalEvaluator"].outputs["blessing"][0]
    assert custom_property(blessing, "blessed") == 0
    assert "Evaluator" not in refused and "AtomicPusher" not in refused
    assert len(e2e.versions(paths)) == 1
    summary = render(collect(refused))
    assert "blessed: TFMA=not run (retrieval gate refused) retrieval=False" in summary
    assert "pushed to: nothing pushed (the retrieval gate refused the model" in summary
    assert "] Evaluator skipped (" in e2e.console_text(paths) and "] AtomicPusher skipped (" in \
        e2e.console_text(paths)


def test_prune_frees_older_runs_and_keeps_what_is_served(first_run):
    """Last here: prune the runs above (real TFX artifacts, linked examples and model)
    down to the newest; the served model and the kept runs' examples still read."""
    paths, examples_root, _ = first_run
    if prune(paths.home, keep_runs=1, dry_run=True).runs < 2:  # this test alone
        e2e.run_pipeline(paths, examples_root)
    served = e2e.versions(paths)
    done = prune(paths.home, keep_runs=1)
    assert done.pruned_runs >= 1 and done.folders and done.size > 0
    assert not any(os.path.exists(f) for f in done.folders)
    assert e2e.versions(paths) == served
    model = tf.saved_model.load(os.path.join(paths.serving_model_dir, served[-1]))
    out = model.signatures["recommend"](user_id=tf.constant(["u1"]), k=tf.constant(3))
    assert out["item_ids"].shape == (1, 3)
    kept = latest_run(paths.metadata_path)["ImportExampleGen"].outputs["examples"][0]
    records = sum(1 for _ in read_split(split_dir(kept.uri, "train")))
    assert records == sum(1 for _ in read_split(os.path.join(examples_root, "train")))
    assert not prune(paths.home, keep_runs=1).folders  # nothing left to free
