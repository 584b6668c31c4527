"""End-to-end: the real TFX pipeline on a tiny synthetic sample (LocalDagRunner + Beam).

Like TFX's penguin_pipeline_local_e2e_test: count MLMD executions, re-run from
the cache, check that an impossible threshold pushes nothing, and that schema
anomalies stop the run before Transform and Trainer.
"""

from __future__ import annotations

import dataclasses
import io
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
from mtrec.components.anomaly_gate.executor import SchemaAnomaliesError
from mtrec.components.atomic_pusher.executor import extended_identity, model_identity
from mtrec.components.text_encoder.corpus import item_text
from mtrec.console import RunConsole
from mtrec.contracts import features as F
from mtrec.data import clean, generate
from mtrec.data.examples import write_examples
from mtrec.data.tables import ITEMS, USERS, make_items, make_users
from mtrec.pipeline import local_runner
from mtrec.pipeline.home_lock import LOCK_FILE
from mtrec.pipeline.home_paths import LocalPaths
from mtrec.pipeline.settings import Thresholds
from mtrec.run_state import custom_property, latest_run
from mtrec.serving import cli as serving_cli
from mtrec.summary import collect, render
from tests import _serving_support as support

pytestmark = pytest.mark.e2e

MODEL = {"epochs": 8, "batch_size": 256, "embedding_dim": 32}
# The small scratch encoder keeps this test fast; MiniLM (the default) has its
# own executor and serving tests in components/text_encoder/minilm_test.py.
TEXT = {"mode": "scratch", "pretrain_steps": 60, "hidden_dim": 32, "intermediate_dim": 64,
        "log_every_steps": 20}
LENIENT = {"relevance_auc_min": 0.5, "retrieval": {"hit_rate@100": 0.01}}
EVERY_COMPONENT = {
    "ImportExampleGen", "CatalogExampleGen", "TextEncoder", "StatisticsGen", "SchemaGen",
    "CuratedSchemaGen", "ExampleValidator",
    "AnomalyGate", "Transform", "Trainer", "Evaluator", "RetrievalEvaluator", "AtomicPusher",
}


def _examples(root, **overrides):
    dataset = clean(generate(n_users=150, n_items=200, n_ratings=6000, seed=3)).dataset
    if overrides:
        users = dataset.users.copy()
        for column, value in overrides.items():
            users[column] = value
        dataset = type(dataset)(dataset.name, dataset.ratings, users, dataset.items,
                                dataset.malformed)
    write_examples(dataset, root)
    return str(root)


def _versions(paths: LocalPaths) -> list[str]:
    base = paths.serving_model_dir
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def _run(paths, examples_root, **thresholds):
    """One pipeline run inside `mtrec run`'s console; its terminal output in console.txt."""
    settings = local_runner.settings(paths, examples_root=examples_root, model=MODEL,
                                     text_encoder=TEXT, workers=2,
                                     thresholds=Thresholds(**{**LENIENT, **thresholds}))
    terminal = io.StringIO()
    try:
        with RunConsole(paths.home, terminal=terminal) as console:
            try:
                local_runner.run(paths, settings)
            except Exception as err:
                console.failure(err)
                raise
    finally:
        with open(os.path.join(paths.home, "console.txt"), "w") as f:
            f.write(terminal.getvalue())
    return latest_run(paths.metadata_path)


def _console(paths) -> str:
    with open(os.path.join(paths.home, "console.txt")) as f:
        return f.read()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("pipeline")
    paths = LocalPaths(str(home))
    examples_root = _examples(home / "examples")
    return paths, examples_root, _run(paths, examples_root)


def test_every_component_runs_and_one_version_is_pushed(first_run):
    paths, _, nodes = first_run
    assert set(nodes) >= EVERY_COMPONENT
    assert {nodes[c].state for c in EVERY_COMPONENT} == {"COMPLETE"}
    versions = _versions(paths)
    assert len(versions) == 1 and versions[0].isdigit()
    pushed = nodes["AtomicPusher"].outputs["pushed_model"][0]
    assert custom_property(pushed, "pushed") == 1


def test_console_shows_each_component_and_epoch_in_few_lines(first_run):
    paths, _, _ = first_run
    out = _console(paths)
    lines = out.splitlines()
    # `mtrec run` adds its summary (about 12 lines) to these: 60 in all at most.
    assert len(lines) <= 48, out
    assert "Traceback" not in out and "WARNING" not in out
    for component in EVERY_COMPONENT:
        assert f"] {component} done in " in out, component
    for slow in ("TextEncoder", "Transform", "Trainer"):
        assert out.index(f"] {slow} started") < out.index(f"] {slow} done in "), slow
    epochs = [line for line in lines if "] Trainer epoch " in line]
    assert len(epochs) == MODEL["epochs"]
    # Training computes losses only: no metric shows as an uncomputed zero.
    assert "0.000 " not in out and "e+00" not in out
    for line in epochs:
        train, validation = line.split(" | val ")[:2]
        assert "(interest " in train and "relevance_auc" in validation, line
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
    assert re.search(rf"^training: \d+ examples, {MODEL['epochs']} epochs, fit [\d.]+s \+ "
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
        assert steps == set(range(MODEL["epochs"])), (phase, steps)


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
    model_dir = os.path.join(paths.serving_model_dir, _versions(paths)[0])
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
        srv.manager.wait_for_version(int(_versions(paths)[0]), timeout=120)
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
    original = set(tf.saved_model.load(paths.serving_model_dir + "/" + _versions(paths)[0])
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
    pushed = model_identity(paths.serving_model_dir + "/" + _versions(paths)[0])
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
    assert all(node in page for node in EVERY_COMPONENT)
    assert "blessed: every TFMA threshold passed" in page
    assert latest_run(paths.metadata_path)["Trainer"].state == "COMPLETE"  # nothing re-ran


def test_second_run_comes_from_cache_and_impossible_threshold_pushes_nothing(first_run):
    paths, examples_root, _ = first_run
    cached = _run(paths, examples_root)
    # Both evaluators run again because they now have a baseline (the first run's
    # blessed model); the Pusher re-runs but recognises the model it pushed.
    rerun = {"Evaluator", "RetrievalEvaluator", "AtomicPusher"}
    assert {cached[c].state for c in EVERY_COMPONENT - rerun} == {"CACHED"}
    assert all(f"] {c} CACHED in " in _console(paths) for c in EVERY_COMPONENT - rerun)
    assert len(_versions(paths)) == 1
    assert "(already served: no new version)" in render(collect(cached))

    strict = _run(paths, examples_root, rating_rmse_max=0.0)
    assert strict["Trainer"].state == "CACHED"
    assert strict["Evaluator"].state == "COMPLETE"
    assert custom_property(strict["Evaluator"].outputs["blessing"][0], "blessed") == 0
    assert re.search(r"TFMA gate failed: rating RMSE \d\.\d{4} > 0\n", render(collect(strict)))
    # The Pusher reads TFMA's blessing (TFX's Pusher contract) and pushes nothing.
    assert custom_property(strict["AtomicPusher"].outputs["pushed_model"][0], "pushed") == 0
    assert len(_versions(paths)) == 1

    # An impossible retrieval bound: the first gate refuses, so TFMA does not run
    # (its blessing would make this model the next run's baseline) nor the Pusher.
    refused = _run(paths, examples_root, retrieval={"ndcg@10_lift": 100.0})  # 101x popularity
    assert refused["RetrievalEvaluator"].state == "COMPLETE"
    blessing = refused["RetrievalEvaluator"].outputs["blessing"][0]
    assert custom_property(blessing, "blessed") == 0
    assert "Evaluator" not in refused and "AtomicPusher" not in refused
    assert len(_versions(paths)) == 1
    summary = render(collect(refused))
    assert "blessed: TFMA=not run (retrieval gate refused) retrieval=False" in summary
    assert "pushed to: nothing pushed (the retrieval gate refused the model" in summary
    assert "] Evaluator skipped (" in _console(paths) and "] AtomicPusher skipped (" in \
        _console(paths)


def test_schema_anomalies_stop_the_run_before_trainer(tmp_path):
    paths = LocalPaths(str(tmp_path))
    examples_root = _examples(tmp_path / "examples", age=500)  # outside the schema's 0..120
    with pytest.raises(SchemaAnomaliesError, match="feature 'age'"):
        _run(paths, examples_root)
    out = _console(paths)
    assert "] AnomalyGate FAILED after " in out
    assert "error in AnomalyGate: " in out and "feature 'age'" in out
    assert "Traceback" not in out
    nodes = latest_run(paths.metadata_path)
    assert nodes["AnomalyGate"].state == "FAILED"
    assert "Transform" not in nodes and "Trainer" not in nodes
    assert not _versions(paths)


def test_interactions_alone_run_to_a_push(tmp_path):
    """A log of interactions alone (`--source generic` without users or items files:
    no titles, genres or years; every rating 1, as clicks or views are) trains, passes
    both gates and is pushed. The export crashed on a catalogue without years, and
    TFMA's bounds on rating RMSE and like AUC, which such a log has no labels for,
    refused every model."""
    paths = LocalPaths(str(tmp_path))
    dataset = clean(generate(n_users=80, n_items=60, n_ratings=2000, seed=5)).dataset
    ids_only = dataclasses.replace(
        dataset, ratings=dataset.ratings.assign(**{F.RATING: 1.0}),
        users=make_users(dataset.users[F.USER_ID]), items=make_items(dataset.items[F.ITEM_ID]),
        derived=frozenset({USERS, ITEMS}))
    report = write_examples(ids_only, tmp_path / "examples")
    assert report["n_items_with_genres"] == 0 and report["rating_values"] == 1
    nodes = _run(paths, str(tmp_path / "examples"),
                 rating_labels=False)
    assert {name: node.state for name, node in nodes.items() if node.state != "COMPLETE"} == {}
    assert custom_property(nodes["Evaluator"].outputs["blessing"][0], "blessed") == 1
    assert len(_versions(paths)) == 1
    # No genres: user_interest lists none (it listed tf.Transform's empty-vocabulary
    # placeholder, '49d0cd50-...', at P 0.5: serving_tables.genre_vocabulary).
    served = tf.saved_model.load(os.path.join(paths.serving_model_dir, _versions(paths)[0]))
    interest = served.signatures["user_interest"](user_id=tf.constant(["u1", "nobody"]))
    assert interest["genres"].shape == (2, 0) and interest["scores"].shape == (2, 0)
