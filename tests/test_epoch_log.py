"""The Trainer's per-epoch console line (models/epoch_log.py), on hand-made Keras logs."""

from mtrec.models import epoch_log
from mtrec.models.epoch_log import epoch_line

# What tfrs.Model.fit hands callbacks: training skips metrics, so its AUC and
# RMSE entries are the metrics' untouched zeros; validation computed them.
LOGS = {
    "loss": 1.23456, "regularization_loss": 0.0, "total_loss": 1.23456,
    "retrieval_loss": 0.9, "rating_loss": 0.8125, "ranking_loss": 0.5, "interest_loss": 0.125,
    "ranking_auc": 0.0, "rating_rmse": 0.0, "rating_mae": 0.0, "interest_auc": 0.0,
    "val_loss": 1.5, "val_rating_loss": 0.9, "val_regularization_loss": 0.0,
    "val_ranking_auc": 0.8124, "val_rating_rmse": 0.9512, "val_rating_mae": 0.75,
    "val_interest_auc": 0.7,
}


def test_epoch_line_shows_task_losses_and_validation_metrics_only() -> None:
    assert epoch_line(3, 8, LOGS, 12.34) == (
        "Trainer epoch 3/8: loss 1.235 (weighted; per task: interest 0.125, ranking 0.500, "
        "rating 0.812, retrieval 0.900) | val interest_auc 0.700, ranking_auc 0.812, "
        "rating_mae 0.750, rating_rmse 0.951 | 12.3s"
    )


def test_epoch_line_without_per_task_losses_or_validation() -> None:
    assert epoch_line(1, 1, {"loss": 2.0, "rating_rmse": 0.0}, 0.04) == (
        "Trainer epoch 1/1: loss 2.000 | 0.0s"
    )


def test_epoch_seconds_add_up_to_the_fit_time(monkeypatch) -> None:
    """Each line times its epoch from the previous one's end: the gap between epochs (at
    t 3-5 here) is in a line, so the lines sum to the fit's 6 s, not 3 s."""
    clock = iter([0.0, 0.0, 3.0, 6.0])  # __init__, on_train_begin, two epoch ends
    lines: list[str] = []
    monkeypatch.setattr(epoch_log.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(epoch_log, "report", lambda line, **_: lines.append(line))
    callback = epoch_log.EpochLog(2)
    callback.on_train_begin()
    for epoch in range(2):
        callback.on_epoch_begin(epoch)  # at t 1 and t 5: not a start
        callback.on_epoch_end(epoch, {"loss": 1.0})
    assert [line.rsplit("| ", 1)[1] for line in lines] == ["3.0s", "3.0s"]
