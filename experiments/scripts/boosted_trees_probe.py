"""Probe: a non-linear model on the same qEMG features. scikit-learn's HistGradientBoostingClassifier at its
defaults (class-balanced, random_state 0; settings fixed before the run) per LOSO fold on the 21 other subjects'
windows; window accuracy and record accuracy (mean of the window probabilities), pooled over the 22 folds.
scikit-learn is not a dependency of the project (mlflow, an optional logger, brings it).

    EMGLAB_DIR=../shared/data/emglab-n2001-bb .venv/bin/python experiments/scripts/boosted_trees_probe.py
"""

from __future__ import annotations

import numpy as np
from qemg_windows import load_qemg_windows
from sklearn.ensemble import HistGradientBoostingClassifier


def main() -> None:
    data = load_qemg_windows(sample_rate=None)  # native rate, as recorded
    x, y, subject, record = data.x, data.y, data.subject, data.record
    probabilities = np.zeros((len(y), len(data.classes)))
    for held_out in sorted(set(subject)):
        test = subject == held_out
        model = HistGradientBoostingClassifier(class_weight="balanced", random_state=0).fit(x[~test], y[~test])
        probabilities[test] = model.predict_proba(x[test])
    names = sorted(set(record))
    record_y = np.array([y[record == r][0] for r in names])
    record_p = np.array([probabilities[record == r].mean(axis=0) for r in names])
    print(f"windows {len(y)}: accuracy {np.mean(probabilities.argmax(axis=1) == y):.3f}")
    print(f"records {len(names)}: accuracy {np.mean(record_p.argmax(axis=1) == record_y):.3f}")


if __name__ == "__main__":
    main()
