"""CV aggregation arithmetic against hand-computed cases, and the report written from files alone."""

import json

import numpy as np
import pytest

from emg_lightning.metrics.aggregate import aggregate, confusion_matrix, pool
from emg_lightning.reports.cv_summary import report

CLASSES = ["normal", "als"]


def row(subject, record, label, p_als, seed="0", window="0"):
    return {
        "seed": seed,
        "subject": subject,
        "record": record,
        "label": label,
        "window": window,
        "probabilities": np.array([1 - p_als, p_als]),
    }


# Subject A (als): record A-r1 windows 0.9, 0.3 (mean 0.6 -> als); record A-r2 windows 0.2, 0.2 (mean 0.2 -> normal)
#   subject mean of records (0.6 + 0.2) / 2 = 0.4 -> normal
# Subject C (normal): record C-r1 windows 0.1, 0.6 (mean 0.35 -> normal)
ROWS = [
    row("A", "A-r1", "als", 0.9),
    row("A", "A-r1", "als", 0.3),
    row("A", "A-r2", "als", 0.2),
    row("A", "A-r2", "als", 0.2),
    row("C", "C-r1", "normal", 0.1),
    row("C", "C-r1", "normal", 0.6),
]


def test_pooling_levels_hand_computed():
    assert confusion_matrix(pool(ROWS, "window"), CLASSES).tolist() == [[1, 1], [3, 1]]
    assert confusion_matrix(pool(ROWS, "record"), CLASSES).tolist() == [[1, 0], [1, 1]]
    assert confusion_matrix(pool(ROWS, "subject"), CLASSES).tolist() == [[1, 0], [1, 0]]
    assert confusion_matrix([], CLASSES).tolist() == [[0, 0], [0, 0]]  # nothing tested: no counts
    record_probabilities = sorted(float(p[1]) for _, p, _ in pool(ROWS, "record"))
    assert record_probabilities == pytest.approx([0.2, 0.35, 0.6])


def test_subject_pooling_is_the_mean_of_record_probabilities_not_of_windows_nor_a_vote():
    # Subject S (als): record r1 has three windows at p_als 0.9, record r2 one window at 0.0.
    #   mean of its records' probabilities: (0.9 + 0.0) / 2 = 0.45 -> normal (what the report defines)
    #   mean of its windows: (0.9 * 3 + 0.0) / 4 = 0.675 -> als; majority of windows: 3 of 4 -> als
    rows = [row("S", "r1", "als", 0.9, window=str(k)) for k in range(3)] + [row("S", "r2", "als", 0.0)]
    ((label, probabilities, subject),) = pool(rows, "subject")
    assert (label, subject) == ("als", "S")
    np.testing.assert_allclose(probabilities, [0.55, 0.45])
    assert confusion_matrix(pool(rows, "subject"), CLASSES).tolist() == [[0, 0], [1, 0]]
    record_p_als = sorted(float(p[1]) for _, p, _ in pool(rows, "record"))
    assert record_p_als == pytest.approx([0.0, 0.9])  # each record the mean of its own windows


def test_aggregate_hand_computed_metrics_and_seeds():
    folds = [{"fold": 0, "seed": "0", "rows": ROWS[:4]}, {"fold": 1, "seed": "0", "rows": ROWS[4:]}]
    second_seed = [
        dict(r, seed="1", probabilities=np.array([0.0, 1.0]) if r["label"] == "als" else np.array([1.0, 0.0]))
        for r in ROWS
    ]  # seed 1 is perfect
    folds += [{"fold": 0, "seed": "1", "rows": second_seed[:4]}, {"fold": 1, "seed": "1", "rows": second_seed[4:]}]
    s = aggregate(folds, CLASSES)
    window0 = s["pooled"]["window"]["per_seed"]["0"]
    assert window0["acc"] == pytest.approx(2 / 6)
    assert window0["bal_acc"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert window0["recall/als"] == pytest.approx(0.25) and window0["specificity/als"] == pytest.approx(0.5)
    assert s["pooled"]["record"]["per_seed"]["0"]["bal_acc"] == pytest.approx((1 + 0.5) / 2)
    assert s["pooled"]["subject"]["per_seed"]["0"]["acc"] == pytest.approx(0.5)
    across = s["pooled"]["window"]["across_seeds"]["acc"]
    assert across["mean"] == pytest.approx((2 / 6 + 1) / 2)
    assert across["std"] == pytest.approx(np.std([2 / 6, 1.0], ddof=1))
    fold_accs = [f["acc"] for f in s["per_fold"]]  # seed 0: fold 0 = 1/4, fold 1 = 1/2; seed 1: 1, 1
    assert fold_accs == pytest.approx([0.25, 0.5, 1.0, 1.0])
    # over the folds of each seed, never pooling the seeds' folds into one spread
    assert s["over_folds_per_seed"]["0"]["acc"]["mean"] == pytest.approx(0.375)
    assert s["over_folds_per_seed"]["0"]["acc"]["std"] == pytest.approx(np.std([0.25, 0.5], ddof=1))
    assert s["over_folds_per_seed"]["1"]["acc"] == {"mean": 1.0, "std": 0.0, "n": 2}
    assert s["n_folds"] == 2 and s["seeds"] == ["0", "1"]


def test_report_from_files(tmp_path):
    for fold, rows in ((0, ROWS[:4]), (1, ROWS[4:])):
        d = tmp_path / f"fold_{fold:02d}"
        d.mkdir()
        lines = ["fold,seed,subject,record,window,label,predicted,p_normal,p_als"]
        lines += [
            f"{fold},0,{r['subject']},{r['record']},{r['window']},{r['label']},"
            f"{CLASSES[int(np.argmax(r['probabilities']))]},{r['probabilities'][0]},"
            f"{r['probabilities'][1]}"
            for r in rows
        ]
        (d / "predictions.csv").write_text("\n".join(lines) + "\n")
        (d / "metrics.json").write_text(json.dumps({"fold": fold, "seed": 0, "split": "loso", "leaky": False}))
    (tmp_path / "fold_02").mkdir()
    (tmp_path / "fold_02" / "failed.json").write_text(json.dumps({"fold": 2, "seed": 0, "error": "boom"}))
    summary = report(tmp_path, "hand")
    assert summary["pooled"]["record"]["per_seed"]["0"]["confusion"] == [[1, 0], [1, 1]]
    assert summary["failed"] == [{"fold": 2, "seed": 0, "error": "boom"}]
    md = (tmp_path / "cv_summary.md").read_text()
    assert "Split: `loso`, 2 folds; subject-independent" in md and "fold 2 seed 0: boom" in md
    assert json.loads((tmp_path / "cv_summary.json").read_text())["name"] == "hand"
    assert (tmp_path / "confusion_matrices.png").stat().st_size > 1000
    assert (tmp_path / "per_fold_accuracy.png").stat().st_size > 1000


def test_cv_summary_run_is_logged_to_wandb_offline(tmp_path, monkeypatch):
    from emg_lightning.config import compose_config
    from emg_lightning.cv.sweep import log_summary_to_wandb

    test_report_from_files(tmp_path)
    summary = json.loads((tmp_path / "cv_summary.json").read_text())
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config(["experiment_name=hand"])
    log_summary_to_wandb(cfg, summary, tmp_path)
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    media = run_dir / "files" / "media"
    assert len(list((media / "images").glob("*.png"))) == 2 and list((media / "table").glob("per_fold*.json"))


def test_the_selection_score_is_the_mean_validation_score_when_every_run_has_one_kind():
    from emg_lightning.reports.cv_summary import selection_score, validation_score

    folds = [
        {"validation": validation_score({"best_val_bal_acc": 0.8})},  # a run from before best_val_score
        {"validation": validation_score({"best_val_score": {"monitor": "val/bal_acc", "value": 0.9}})},
    ]
    assert selection_score(folds) == {"monitor": "val/bal_acc", "mean": pytest.approx(0.85), "runs": 2}
    loss = {"validation": validation_score({"best_val_score": {"monitor": "val/loss", "value": 0.3}})}
    assert selection_score([*folds, loss]) is None  # a mean of accuracies and losses means nothing
    assert selection_score([*folds, {"validation": validation_score({})}]) is None  # one run without a score


def test_the_selection_score_of_final_epoch_runs_is_their_final_validation_score():
    from emg_lightning.reports.cv_summary import validation_score

    best = {"monitor": "val/bal_acc", "value": 0.9}
    final = {"monitor": "val/bal_acc", "value": 0.7}
    assert validation_score({"test_weights": "best", "best_val_score": best, "final_val_score": final}) == best
    assert validation_score({"test_weights": "last", "best_val_score": best, "final_val_score": final}) == final
    # a final-epoch run from before final_val_score: its best epoch's score is not what it tested
    assert validation_score({"test_weights": "last", "best_val_score": best, "best_val_bal_acc": 0.9}) is None
