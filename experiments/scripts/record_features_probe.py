"""Probe: does pooling the qEMG features over a whole record (as clinical quantitative EMG pools the motor-unit
potentials of a muscle) beat pooling the window model's probabilities?

Each record becomes the mean of its windows' 88 qEMG features; the same L2 logistic regression as ``model=qemg``
(``fit_feature_linear``: standardised, class-balanced, strength by a subject-grouped 5-fold inner cross-validation
over the non-test subjects) is fitted per LOSO fold on the records of the 21 other subjects and scores the held-out
subject's records. Settings fixed before the run (the qEMG baseline's). Prints record accuracy, balanced accuracy and
subject votes. A probe, not a framework model: record predictions only, no window level.

    EMGLAB_DIR=../shared/data/emglab-n2001-bb .venv/bin/python experiments/scripts/record_features_probe.py
"""

from __future__ import annotations

import numpy as np
from qemg_windows import load_qemg_windows

from emg_lightning.data.splits import group_kfold
from emg_lightning.models.linear import FeatureLinear, balanced_accuracy, fit_feature_linear


def main() -> None:
    data = load_qemg_windows(sample_rate=None)  # native rate, as recorded
    features, classes, records = data.x, data.classes, data.record
    names = sorted(set(records))
    x = np.stack([features[records == r].mean(axis=0) for r in names])
    first = [int(np.flatnonzero(records == r)[0]) for r in names]
    subject = data.subject[first]
    y = data.y[first]
    label_of = dict(zip(subject.tolist(), (classes[i] for i in y)))
    predicted = np.empty(len(names), dtype=np.int64)
    for held_out in sorted(label_of):
        fitting = subject != held_out
        others = {s: c for s, c in label_of.items() if s != held_out}
        fold_of = {s: i for i, group in enumerate(group_kfold(others, 5, 0)) for s in group}
        net = FeatureLinear(num_classes=len(classes), in_features=x.shape[1])
        fit_feature_linear(net, x[fitting], y[fitting], np.array([fold_of[s] for s in subject[fitting]]),
                           data.l2_grid)  # fmt: skip
        scores = (x[~fitting] - net.mean.numpy()) / net.scale.numpy() @ net.linear.weight.detach().numpy().T
        predicted[~fitting] = (scores + net.linear.bias.detach().numpy()).argmax(axis=1)
    votes = {s: np.bincount(predicted[subject == s], minlength=len(classes)).argmax() for s in label_of}
    balanced = balanced_accuracy(y, predicted)
    print(f"records {len(names)}: accuracy {np.mean(predicted == y):.3f}, balanced {balanced:.3f}")
    print(f"subjects (majority of records): {sum(classes[v] == label_of[s] for s, v in votes.items())}/{len(votes)}")


if __name__ == "__main__":
    main()
