"""TFX Trainer entry point (`run_fn`): stream Transform output, fit, export.

Training reads the transformed TFRecords through the Trainer's data accessor,
so the dataset is never loaded into memory; only per-user and per-item tables
are (models/serving_tables.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from mtrec.contracts import signatures as S
from mtrec.contracts.artifacts import (
    CATALOG_SIZE,
    EVAL_METRIC_PREFIX,
    FIT_PHASE,
    LIKE_CALIBRATION,
    PHASE_SECONDS,
    SERVED_REGIME,
    TENSORBOARD_DIR,
    TRAIN_EXAMPLES,
    TRAIN_SECONDS,
    TRAINED_EPOCHS,
    TRAINED_OPTIMIZER,
    TRAINED_PROTOCOL_OVERRIDES,
    TRAINING_METRICS_FILE,
    WEIGHTS_DIR,
)
from mtrec.contracts.pipeline import (
    CONFIG_DISTRIBUTION,
    CONFIG_ITEM_CATALOG_URI,
    CONFIG_ITEM_TEXT_EMBEDDINGS_URI,
    CONFIG_MODEL,
    CONFIG_SPLIT_PROTOCOL,
    MIRRORED,
    MULTI_WORKER_MIRRORED,
    SPLIT_PROTOCOL,
)
from mtrec.models.config import (
    ModelConfig,
    applied_protocol_settings,
    resolve_optimizer,
    with_protocol_overrides,
)
from mtrec.models.epoch_log import EpochLog
from mtrec.models.export import export_serving_model, served_regime
from mtrec.models.item_catalog import read_catalog
from mtrec.models.item_text import ItemText
from mtrec.models.like_calibration import calibrate_likes
from mtrec.models.model import MultiTaskModel
from mtrec.models.neighbour_rating import MAX_ITEMS as NEIGHBOUR_MAX_ITEMS
from mtrec.models.neighbour_rating import fit_neighbour_ratings
from mtrec.models.optimizer import LazyAdam
from mtrec.models.serving_tables import (
    ServingTables,
    build_serving_tables,
    genre_vocabulary,
    item_sampling_probability,
)
from mtrec.models.towers import VocabSizes
from mtrec.models.weights_file import save_weights
from mtrec.serving.warmup import write_warmup_requests

log = logging.getLogger(__name__)
# The pipeline's Trainer: initialisation, dropout masks and the data order.
TRAINING_SEED = 0



def make_dataset(
    files: list[str], data_accessor: DataAccessor, tft_output: tft.TFTransformOutput,
    batch_size: int, shuffle: bool, seed: int = 0
) -> tf.data.Dataset:
    """Batched dicts of transformed features, streamed from TFRecords."""
    return data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, shuffle=shuffle, shuffle_seed=seed, num_epochs=1
        ),
        tft_output.transformed_metadata.schema,
    ).prefetch(tf.data.AUTOTUNE)


def train_and_export(
    train_ds: tf.data.Dataset,
    eval_ds: tf.data.Dataset,
    scan_ds: tf.data.Dataset,
    tft_output: tft.TFTransformOutput,
    config: ModelConfig,
    serving_dir: str,
    log_dir: str | None = None,
    catalog_dir: str | None = None,
    item_text: ItemText | None = None,
    strategy: tf.distribute.Strategy | None = None,
    weights_dir: str | None = None,
    seed: int = 0,
) -> dict:
    """Fit the multi-task model, export it, and return its metrics.

    `catalog_dir`: catalogue examples (every item) for the serving index;
    `item_text`: the TextEncoder's vectors, a frozen candidate-tower input.
    """
    tf.keras.utils.set_random_seed(seed)  # initialisation, dropout masks, id dropout
    sizes = VocabSizes.from_transform_output(tft_output)
    # One resolved config from here on: the model, the optimizer and the metrics read it.
    config = resolve_optimizer(config, sizes)
    t0 = time.time()
    catalog = read_catalog(catalog_dir, tft_output) if catalog_dir else None
    tables = build_serving_tables(scan_ds, sizes, catalog)
    t_scan = time.time()
    chief = is_chief(strategy)
    with _outputs(chief, serving_dir, weights_dir, log_dir) as outputs:
        serving_dir, weights_dir, log_dir = outputs
        with (strategy or tf.distribute.get_strategy()).scope():
            model = build_model(sizes, config, tft_output, tables, item_text)
            model.compile(optimizer=make_optimizer(config, tables.num_train_examples))
        callbacks: list[tf.keras.callbacks.Callback] = [EpochLog(config.epochs)]
        if log_dir:
            callbacks.append(tf.keras.callbacks.TensorBoard(log_dir, update_freq="epoch"))
        t_fit = time.time()
        history = model.fit(  # EpochLog, not Keras' line, which shows uncomputed metrics as 0
            train_ds, epochs=config.epochs, validation_data=eval_ds, verbose=0, callbacks=callbacks
        )
        t_eval = time.time()
        evaluation = model.evaluate(eval_ds, return_dict=True, verbose=0)
        # Timed as part of "evaluate"; on the queries `score` serves (users' profiles).
        like_calibration = calibrate_likes(model, train_ds, tables.profiles)
        t_export = time.time()
        module = export_serving_model(model, tft_output, tables, serving_dir, item_text)
        if weights_dir:  # lets `mtrec add-items` re-index a catalogue without retraining
            save_weights(model, weights_dir)
        write_warmup(serving_dir, tables)
    metrics = {
        TRAIN_SECONDS: round(t_eval - t0, 2),
        # Where the time went: the serving-table scan, model build, fit, evaluate, export.
        PHASE_SECONDS: {
            "scan": round(t_scan - t0, 2),
            "build": round(t_fit - t_scan, 2),
            FIT_PHASE: round(t_eval - t_fit, 2),
            "evaluate": round(t_export - t_eval, 2),
            "export": round(time.time() - t_export, 2),
        },
        TRAIN_EXAMPLES: tables.num_train_examples,
        CATALOG_SIZE: tables.num_items,
        "text_encoder": item_text is not None,
        TRAINED_EPOCHS: config.epochs,
        "workers": num_workers(strategy),
        "replicas": (strategy or tf.distribute.get_strategy()).num_replicas_in_sync,
        "global_batch_size": config.batch_size,
        "chief": chief,
        TRAINED_OPTIMIZER: config.optimizer,
        LIKE_CALIBRATION: list(like_calibration),
        SERVED_REGIME: served_regime(module),
        "final_train_loss": float(history.history["loss"][-1]),
        **{EVAL_METRIC_PREFIX + k: float(v) for k, v in evaluation.items()},
    }
    log.info("training metrics: %s", metrics)
    return metrics


@contextlib.contextmanager
def _outputs(chief: bool, serving_dir: str, weights_dir: str | None, log_dir: str | None,
             ) -> Iterator[tuple[str, str | None, str | None]]:
    """The chief's (serving, weights, log) dirs, or a non-chief worker's in a scratch
    folder deleted afterwards. Saving is collective: every worker saves, and only the
    chief's copies are kept (a worker's full export used to stay in /tmp)."""
    if chief:
        yield serving_dir, weights_dir, log_dir
        return
    with tempfile.TemporaryDirectory(prefix="mtrec-worker-export-") as scratch:
        log.info("not the chief: writing the export to scratch %s", scratch)
        yield (os.path.join(scratch, "model"),
               os.path.join(scratch, "weights") if weights_dir else None,
               os.path.join(scratch, "logs") if log_dir else None)


def build_model(
    sizes: VocabSizes,
    config: ModelConfig,
    tft_output: tft.TFTransformOutput,
    tables: ServingTables,
    item_text: ItemText | None = None,
) -> MultiTaskModel:
    """The model over one Transform output and training scan (Trainer and re-index alike)."""
    return MultiTaskModel(
        sizes,
        config,
        item_sampling_prob=item_sampling_probability(tft_output, sizes),
        rating_mean=tables.rating_mean,
        rating_range=tables.rating_range,
        text_table=item_text.table(tft_output, sizes.items) if item_text else None,
        rated=(tables.rated_splits, tables.rated_idx),
        neighbour_ratings=neighbour_ratings(tables, sizes, config),
        genre_vocab_size=len(genre_vocabulary(tft_output)),
    )


def neighbour_ratings(tables: ServingTables, sizes: VocabSizes,
                      config: ModelConfig) -> np.ndarray | None:
    """The served rating's closed-form partner (models/neighbour_rating.py), fitted here
    from the training scan so the Trainer, the export and add-items' re-index agree."""
    if (not config.rating_knn_weight or tables.rated_ratings is None
            or sizes.known_items > NEIGHBOUR_MAX_ITEMS):  # catalogue items, not table rows
        return None
    return fit_neighbour_ratings(tables.rated_splits, tables.rated_idx, tables.rated_ratings,
                                 sizes.items, config.rating_knn_neighbours,
                                 config.rating_knn_shrink)


def make_optimizer(config: ModelConfig, train_examples: int) -> tf.keras.optimizers.Optimizer:
    """config.optimizer at config.learning_rate, constant or cosine-decayed over every step.

    Takes the model's config: "auto" is settled by MultiTaskModel on the table sizes.
    """
    optimizers = {"adam": tf.keras.optimizers.Adam, "lazy_adam": LazyAdam}
    if config.optimizer not in optimizers:
        raise ValueError(f"pass model.config, with the optimizer resolved: {config.optimizer!r}")
    optimizer = optimizers[config.optimizer]
    if config.lr_schedule == "constant":
        return optimizer(config.learning_rate)
    steps = config.epochs * max(1, math.ceil(train_examples / config.batch_size))
    return optimizer(
        tf.keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.05)
    )


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def distribution_strategy(name: str | None) -> tf.distribute.Strategy:
    """custom_config["distribution"] -> a tf.distribute strategy.

    "multi_worker_mirrored" reads the cluster from TF_CONFIG (set by a TFJob,
    a Vertex custom job or Kubeflow's training operator); with one worker it
    behaves like "mirrored". None: the default strategy (one device).
    """
    if name == MIRRORED:
        return tf.distribute.MirroredStrategy()
    if name == MULTI_WORKER_MIRRORED:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name is None:
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown distribution {name!r}")


def num_workers(strategy: tf.distribute.Strategy | None) -> int:
    """Worker processes in the strategy's cluster (chief included); 1 without a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(role, ())) for role in ("chief", "worker"))


def shard_options(num_files: int, strategy: tf.distribute.Strategy) -> tf.data.Options:
    """How each worker's input is split: by file when every worker gets a file, else by record.

    FILE sharding reads each file on one worker only (Transform writes many
    shards at scale); with fewer files than workers some workers would get no
    data, so DATA sharding is used: every worker reads every file and keeps
    its 1/N of the records. One worker: no sharding.
    """
    workers = num_workers(strategy)
    policy = tf.data.experimental.AutoShardPolicy
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        policy.OFF if workers <= 1 else policy.FILE if num_files >= workers else policy.DATA
    )
    log.info("input sharding over %d workers and %d files: %s", workers, num_files,
             options.experimental_distribute.auto_shard_policy.name)
    return options


def write_warmup(serving_dir: str, tables: ServingTables) -> None:
    """TF Serving replays these before a version takes traffic (real ids from training)."""
    users = [u.decode() for u in tables.sample_user_ids]
    items = [i.decode() for i in tables.item_ids[:10]]
    k = min(10, tables.num_items)
    write_warmup_requests(
        serving_dir,
        [
            (S.RECOMMEND, {S.USER_ID: users, S.K: k}),
            (S.RETRIEVE, {S.USER_ID: users, S.K: k}),
            (S.SCORE, {S.USER_ID: users[:1], S.ITEM_IDS: [items]}),
            (S.USER_INTEREST, {S.USER_ID: users}),
            (S.EMBED_USER, {S.USER_ID: users}),
            (S.EMBED_ITEM, {S.ITEM_ID: items}),
            (S.DESCRIBE_ITEMS, {S.ITEM_IDS: [items]}),
        ],
    )


def run_fn(fn_args: FnArgs) -> None:
    """Called by the TFX Trainer (GenericExecutor).

    The strategy is made first: MultiWorkerMirroredStrategy configures TF's
    collectives, which must happen before any other TensorFlow op runs.
    `config.batch_size` is per replica; the datasets (and the learning-rate
    schedule) use the global batch, batch_size x replicas in sync, so adding
    workers keeps each worker's step the same size and halves the steps.
    The split protocol's settings (TRAINED_PROTOCOL_OVERRIDES) come under the
    configured ones, here rather than in the CLI, so a compiled pipeline whose
    data_root is set at run time trains what `mtrec run` trains on that data.
    """
    custom = fn_args.custom_config or {}
    strategy = distribution_strategy(custom.get(CONFIG_DISTRIBUTION))
    protocol = custom.get(CONFIG_SPLIT_PROTOCOL)
    overrides = with_protocol_overrides(protocol, custom.get(CONFIG_MODEL))
    log.info("split protocol %s: model overrides %s", protocol, overrides)
    config = ModelConfig.from_dict(overrides)
    config = dataclasses.replace(
        config, batch_size=config.batch_size * strategy.num_replicas_in_sync
    )
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    log.info("replicas in sync: %d, global batch %d", strategy.num_replicas_in_sync,
             config.batch_size)
    # tf.data fixes a shuffle's seeds when the dataset is built, from the process's
    # global seed of that moment. The TextEncoder leaves its own (42) when it ran in
    # this process, and not when the cache skipped it, so a resumed run trained
    # another model than a fresh one (sample: RMSE 0.6813 against 0.6804).
    tf.keras.utils.set_random_seed(TRAINING_SEED)

    def dataset(files: list[str], shuffle: bool, batch_size: int = config.batch_size
                ) -> tf.data.Dataset:
        ds = make_dataset(files, fn_args.data_accessor, tft_output, batch_size, shuffle)
        return ds.with_options(shard_options(len(files), strategy))

    metrics = train_and_export(
        train_ds=dataset(fn_args.train_files, shuffle=True),
        eval_ds=dataset(fn_args.eval_files, shuffle=False),
        scan_ds=dataset(fn_args.train_files, shuffle=False, batch_size=8192),
        tft_output=tft_output,
        config=config,
        serving_dir=fn_args.serving_model_dir,
        log_dir=os.path.join(fn_args.model_run_dir, TENSORBOARD_DIR),
        weights_dir=os.path.join(fn_args.model_run_dir, WEIGHTS_DIR),
        catalog_dir=custom.get(CONFIG_ITEM_CATALOG_URI),
        strategy=strategy,
        seed=TRAINING_SEED,
        item_text=(
            ItemText.load(custom[CONFIG_ITEM_TEXT_EMBEDDINGS_URI])
            if custom.get(CONFIG_ITEM_TEXT_EMBEDDINGS_URI)
            else None
        ),
    )
    # What the run's summary shows of the protocol (None: the Examples did not record one).
    metrics[SPLIT_PROTOCOL] = protocol
    metrics[TRAINED_PROTOCOL_OVERRIDES] = applied_protocol_settings(protocol, config)
    if metrics["chief"]:  # every replica has the same metrics; one file, no race
        path = os.path.join(fn_args.model_run_dir, TRAINING_METRICS_FILE)
        with tf.io.gfile.GFile(path, "w") as f:
            json.dump(metrics, f, indent=2)


__all__ = ["run_fn", "train_and_export", "make_dataset"]
