"""data.weight_by: per-row weights by hand, the subject-weighted sampler's draws, the settings' refusals."""

import numpy as np
import pytest
import torch

from emg_lightning.data.datamodule import Serving
from emg_lightning.data.weighting import training_sampler, training_weights
from emg_lightning.runtime.errors import ConfigError


def test_subject_weights_by_hand():
    # 4 rows, 2 subjects: a's three rows weigh 4 / (2 * 3) = 2/3 each, b's one row 4 / (2 * 1) = 2
    weights = training_weights(np.array(["a", "b", "a", "a"]), "subject")
    assert weights == pytest.approx([2 / 3, 2, 2 / 3, 2 / 3])
    assert training_weights(np.array(["a", "b", "a", "a"]), "window").tolist() == [1, 1, 1, 1]


def test_subject_sampler_draws_each_subject_equally_often():
    # subject a holds 90 rows, b 10: drawn by row, a would be 90 % of the draws; by subject, half
    subjects = np.array(["a"] * 90 + ["b"] * 10)
    torch.manual_seed(0)
    draws = np.concatenate([list(training_sampler(subjects, "subject")) for _ in range(200)])  # 20,000 draws
    assert len(draws) == 200 * len(subjects)
    assert np.mean(subjects[draws] == "b") == pytest.approx(0.5, abs=0.02)
    torch.manual_seed(0)
    epoch = list(training_sampler(subjects, "window"))
    assert sorted(epoch) == list(range(100))  # every window once


def test_weight_by_refusals_name_the_setting():
    with pytest.raises(ConfigError, match=r"data.weight_by='record' is unknown; use one of window, subject"):
        Serving(weight_by="record")
    with pytest.raises(ConfigError, match="record-level model.*set data.weight_by=window"):
        Serving(weight_by="subject", whole_records=True)
