"""Probe: does averaging the qEMG baseline's models at several feature rates beat the one rate the inner CV
chooses? Each rate's features see the needle signal through another low-pass (23,437.5 / 11,718.75 / 4,687.5 /
2,343.75 Hz: ``feature_rate_probe.py``); their linear models make partly different errors, and a mean of their
probabilities is still a fixed, closed-form procedure (the framework's ``emg-ensemble`` of CV runs).

Nested, so the outer figure is honest for the procedure: in each LOSO fold and for each seed (0, 1, 2), the
baseline's own inner cross-validation over the 21 non-test subjects scores each rate alone, each pair of rates and
all four (an ensemble by its members' out-of-fold probabilities at their chosen L2 strengths); the candidate with the
lowest inner loss tests the held-out subject. Candidates fixed before the run. Prints window and record accuracy and
balanced accuracy (mean over the seeds) of the nested procedure and of each candidate alone, and how often each was
chosen. About 30 minutes on one core once the windows and features of each rate are cached.

    EMGLAB_DIR=../shared/data/emglab-n2001-bb .venv/bin/python experiments/scripts/rate_ensemble_probe.py
"""

from __future__ import annotations

from itertools import combinations

import torch
from qemg_windows import nested_feature_choice, print_nested_choice, rate_feature_sets

SEEDS = (0, 1, 2)
RATES_HZ = (None, 11718.75, 4687.5, 2343.75)  # None: native 23,437.5 Hz


def main() -> None:
    torch.set_num_threads(1)
    sets, reference = rate_feature_sets(RATES_HZ)
    names = list(sets)
    groups = [*combinations(names, 2), tuple(names)]
    ensembles = {"mean of " + " + ".join(name.split(" Hz")[0] for name in group) + " Hz": group for group in groups}
    print_nested_choice(nested_feature_choice(sets, reference, SEEDS, ensembles), SEEDS)


if __name__ == "__main__":
    main()
