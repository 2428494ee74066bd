"""Probe: at which sampling rate should the qEMG features be computed? Candidates: the native 23,437.5 Hz and a
half, a fifth and a tenth of it (11,718.75, 4,687.5 and 2,343.75 Hz; the framework resamples each record, then
windows it: ``data.sample_rate``). Why it can matter: with the needle's 2 Hz-10 kHz band, zero crossings, turns and
the small MUAP turns / phases at 23.4 kHz count mostly high-frequency noise (every class has ~13,000 turns per
second, shared/docs/emglab.md); resampling low-passes the signal below the new Nyquist frequency. Stated plainly: the
first three rates were also tried one by one at a fixed L2 on the LOSO test figures before this run.

Nested, so the outer figure is honest for the procedure: in each LOSO fold and for each seed (0, 1, 2), the
baseline's own inner cross-validation over the 21 non-test subjects scores the four feature sets; the best one is
refitted and tests the held-out subject. Prints window and record accuracy and balanced accuracy, mean over the
seeds, for the nested procedure and each rate alone, and how often each rate was chosen. About 25 minutes on one
core once the windows and features of each rate are cached (the first run computes them: a few minutes).

    EMGLAB_DIR=../shared/data/emglab-n2001-bb .venv/bin/python experiments/scripts/feature_rate_probe.py

With ``--ensembles``, the candidates also include the mean probability of each pair of rates' models and of all four
(a fixed, closed-form procedure, like the framework's ``emg-ensemble`` of CV runs), an ensemble scored by its
members' out-of-fold probabilities at their own chosen L2: does averaging the rates beat the one rate? About 45
minutes.
"""

from __future__ import annotations

import sys
from itertools import combinations

import torch
from qemg_windows import nested_feature_choice, print_nested_choice, rate_feature_sets

SEEDS = (0, 1, 2)
RATES_HZ = (None, 11718.75, 4687.5, 2343.75)  # None: native 23,437.5 Hz


def main() -> None:
    torch.set_num_threads(1)
    sets, reference = rate_feature_sets(RATES_HZ)
    ensembles = {}
    if "--ensembles" in sys.argv[1:]:
        groups = [*combinations(sets, 2), tuple(sets)]
        ensembles = {"mean of " + " + ".join(name.split(" Hz")[0] for name in group) + " Hz": group for group in groups}
    print_nested_choice(nested_feature_choice(sets, reference, SEEDS, ensembles), SEEDS)


if __name__ == "__main__":
    main()
