"""The Trainer's per-epoch console line (models/epoch_log.py), on hand-made Keras logs."""

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
        "Trainer epoch 3/8: loss 1.235 (interest 0.125, ranking 0.500, rating 0.812, "
        "retrieval 0.900) | val interest_auc 0.700, ranking_auc 0.812, rating_mae 0.750, "
        "rating_rmse 0.951 | 12.3s"
    )


def test_epoch_line_without_per_task_losses_or_validation() -> None:
    assert epoch_line(1, 1, {"loss": 2.0, "rating_rmse": 0.0}, 0.04) == (
        "Trainer epoch 1/1: loss 2.000 | 0.0s"
    )
