import math

import pytest
import torch

from emg_lightning.losses.label_smoothing import (
    OnlineLabelSmoothing,
    confidence_epsilon,
    fixed_label_smoothing,
    scheduled_epsilon,
    smoothed_targets,
    soft_cross_entropy,
)
from emg_lightning.metrics.classification import compute_stage_metrics, make_metrics, metrics_from_confusion


def test_fixed_smoothing_hand_computed():
    q = fixed_label_smoothing(torch.tensor([0, 2]), 3, 0.3)
    expected = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    assert torch.allclose(q, expected)
    assert torch.allclose(q.sum(1), torch.ones(2))


def test_no_smoothing_is_plain_cross_entropy():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    y = torch.tensor([0, 2])
    ours = soft_cross_entropy(logits, smoothed_targets(y, 3, "none"))
    assert torch.allclose(ours, torch.nn.functional.cross_entropy(logits, y))


def test_fixed_smoothing_matches_torch_label_smoothing():
    logits = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    ours = soft_cross_entropy(logits, smoothed_targets(y, 3, "fixed", 0.1))
    assert torch.allclose(ours, torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1))


def test_bad_smoothing_settings():
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        fixed_label_smoothing(torch.tensor([0]), 3, 1.0)
    with pytest.raises(ValueError, match="unknown"):
        smoothed_targets(torch.tensor([0]), 3, "adaptive")
    with pytest.raises(ValueError, match="needs the logits"):
        smoothed_targets(torch.tensor([0]), 3, "confidence", 0.1)


def test_metrics_from_confusion_hand_computed():
    # rows true (normal, als, myopathy), columns predicted
    cm = torch.tensor([[8, 2, 0], [1, 6, 3], [0, 0, 5]])
    m = metrics_from_confusion(cm, ["normal", "als", "myopathy"])
    assert m["recall/normal"] == pytest.approx(0.8)
    assert m["recall/als"] == pytest.approx(0.6)
    assert m["recall/myopathy"] == pytest.approx(1.0)
    assert m["bal_acc"] == pytest.approx((0.8 + 0.6 + 1.0) / 3)
    # specificity of als: negatives 15, of which 2 predicted als
    assert m["specificity/als"] == pytest.approx(13 / 15)
    f1 = [2 * (8 / 9) * 0.8 / (8 / 9 + 0.8), 2 * 0.75 * 0.6 / 1.35, 2 * (5 / 8) * 1.0 / (5 / 8 + 1.0)]
    assert m["f1_macro"] == pytest.approx(sum(f1) / 3)


def test_absent_classes_are_undefined_not_zero():
    cm = torch.tensor([[0, 0, 0], [3, 7, 0], [0, 0, 0]])  # one ALS test subject
    m = metrics_from_confusion(cm, ["normal", "als", "myopathy"])
    assert math.isnan(m["recall/normal"]) and math.isnan(m["recall/myopathy"])
    assert m["bal_acc"] == pytest.approx(0.7)
    assert math.isnan(m["specificity/als"])  # no negatives
    assert m["specificity/normal"] == pytest.approx(0.7)


def test_stage_metrics_from_torchmetrics():
    collection = make_metrics(3)
    probs = torch.tensor([[0.45, 0.42, 0.13], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    collection.update(probs, torch.tensor([0, 1, 2, 1]))
    scalars, confusion = compute_stage_metrics(collection, ["normal", "als", "myopathy"])
    assert confusion == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert scalars["acc"] == pytest.approx(0.75)
    assert scalars["bal_acc"] == pytest.approx((1 + 0.5 + 1) / 3)
    # one-vs-rest pairs ranked by hand: normal 2 of 3 (0.45 under 0.5), als 3 of 4 (0.4 under 0.42), myopathy 1 of 1
    assert scalars["auroc_macro"] == pytest.approx((2 / 3 + 3 / 4 + 1) / 3)


@pytest.mark.parametrize(
    "kind, epoch, expected",
    [
        ("linear", 0, 0.2),
        ("linear", 5, 0.1),
        ("linear", 10, 0.0),
        ("cosine", 0, 0.2),
        ("cosine", 5, 0.1),
        ("cosine", 10, 0.0),
        ("two_stage", 4, 0.2),
        ("two_stage", 5, 0.0),
    ],
)
def test_scheduled_epsilon_hand_computed(kind, epoch, expected):
    assert scheduled_epsilon(0.2, epoch, 10, kind) == pytest.approx(expected)
    assert scheduled_epsilon(0.2, 2, 10, "two_stage", switch_epoch=2) == 0.0


def test_cosine_schedule_quarter_point():
    assert scheduled_epsilon(0.2, 2.5, 10, "cosine") == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi / 4)))


def test_confidence_smoothing_hand_computed():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    y = torch.tensor([0, 1])
    eps = confidence_epsilon(logits, y, 0.2)
    assert torch.allclose(eps, torch.tensor([0.1, 0.16]))
    q = smoothed_targets(y, 3, "confidence", 0.2, logits=logits)
    assert torch.allclose(q[0], torch.tensor([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3]))
    assert torch.allclose(q[1], torch.tensor([0.16 / 3, 0.84 + 0.16 / 3, 0.16 / 3]))
    logits.requires_grad_(True)
    assert not confidence_epsilon(logits, y, 0.2).requires_grad  # no gradient through eps


def test_confidence_smoothing_reads_the_true_class_not_the_top_prediction():
    # the model puts 0.7 on class 1, the truth is class 0 at 0.1: eps = 0.2 x 0.1 = 0.02 (0.14 would be the top's)
    logits = torch.log(torch.tensor([[0.1, 0.7, 0.2]]))
    eps = confidence_epsilon(logits, torch.tensor([0]), 0.2)
    assert torch.allclose(eps, torch.tensor([0.02]))
    q = smoothed_targets(torch.tensor([0]), 3, "confidence", 0.2, logits=logits)
    assert torch.allclose(q, torch.tensor([[0.98 + 0.02 / 3, 0.02 / 3, 0.02 / 3]]))


def test_the_reports_calibration_error_matches_torchmetrics_on_random_predictions():
    from torchmetrics.classification import MulticlassCalibrationError

    from emg_lightning.metrics.aggregate import expected_calibration_error

    generator = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(3 * torch.randn(500, 3, generator=generator), dim=1)
    labels = torch.randint(0, 3, (500,), generator=generator)
    reference = MulticlassCalibrationError(num_classes=3, n_bins=15, norm="l1")(probabilities, labels).item()
    ours = expected_calibration_error(labels.numpy(), probabilities.double().numpy(), bins=15)
    assert ours == pytest.approx(reference, abs=1e-6)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="label_smoothing.schedule='step' is unknown"):
        scheduled_epsilon(0.1, 0, 10, "step")


def test_online_label_smoothing_hand_computed():
    ols = OnlineLabelSmoothing(2, alpha=0.5)
    logits = torch.log(torch.tensor([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]))
    y = torch.tensor([0, 1, 1])  # the third sample is misclassified: it teaches nothing
    first = ols.targets(logits, y)
    assert torch.allclose(first, torch.tensor([[0.75, 0.25], [0.25, 0.75], [0.25, 0.75]]))  # uniform S at start
    ols.end_epoch()
    assert torch.allclose(ols.soft, torch.tensor([[0.8, 0.3], [0.2, 0.7]]))
    second = ols.targets(logits[:1], y[:1], accumulate=False)
    assert torch.allclose(second, torch.tensor([[0.9, 0.1]]))
    ols.end_epoch()  # nothing accumulated: S is kept
    assert torch.allclose(ols.soft, torch.tensor([[0.8, 0.3], [0.2, 0.7]]))
    # the running sums are saved and restored with S, but are no buffer (DDP overwrites buffers with rank 0's)
    assert set(dict(ols.named_buffers())) == {"soft"}
    ols.targets(logits, y)
    restored = OnlineLabelSmoothing(2, alpha=0.5)
    restored.load_state_dict(ols.state_dict())
    assert torch.equal(restored.soft, ols.soft) and torch.equal(restored.accumulator, ols.accumulator)
    assert restored.accumulator.abs().sum() > 0
    old = OnlineLabelSmoothing(2, alpha=0.5)  # a checkpoint from when the sums were a buffer
    old.load_state_dict({"soft": ols.soft.clone(), "accumulator": torch.tensor([[1.0, 2.0], [3.0, 4.0]])})
    assert torch.equal(old.accumulator, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_expected_calibration_error_is_reported():
    collection = make_metrics(3)
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    collection.update(probs, torch.tensor([0, 1]))
    scalars, _ = compute_stage_metrics(collection, ["normal", "als", "myopathy"])
    assert scalars["ece"] == pytest.approx(0.0)  # confident and right: perfectly calibrated
    collection.reset()
    collection.update(torch.tensor([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05]]), torch.tensor([0, 1]))
    scalars, _ = compute_stage_metrics(collection, ["normal", "als", "myopathy"])
    assert scalars["ece"] == pytest.approx(0.4)  # confidence 0.9, accuracy 0.5


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"name": "fixed", "epsilon": 1.0}, r"label_smoothing.epsilon=1.0 must be in \[0, 1\)"),
        ({"name": "fixed", "epsilon": "a"}, "label_smoothing.epsilon='a' must be in"),
        ({"name": "adaptive"}, "label_smoothing.name='adaptive' is unknown"),
        ({"name": "schedule", "epsilon": 0.1, "schedule": "step"}, "label_smoothing.schedule='step' is unknown"),
        ({"name": "online", "alpha": 1.5}, r"label_smoothing.alpha=1.5 must be in \[0, 1\]"),
        ({"name": "fixed", "eps": 0.1}, r"label_smoothing has no settings \['eps'\]"),
    ],
)
def test_label_smoothing_settings_are_checked_once_with_the_setting_named(settings, message):
    from emg_lightning.losses.label_smoothing import LabelSmoothing
    from emg_lightning.runtime.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        LabelSmoothing.from_settings(settings)


def test_label_smoothing_none_ignores_epsilon_and_the_configs_compose():
    from pathlib import Path

    import yaml

    from emg_lightning.losses.label_smoothing import LabelSmoothing

    assert not LabelSmoothing.from_settings({"name": "none", "epsilon": 5}).active
    for path in sorted((Path(__file__).resolve().parents[3] / "conf" / "label_smoothing").glob("*.yaml")):
        LabelSmoothing.from_settings(yaml.safe_load(path.read_text()))  # every shipped option is valid


# -- hand cases found by mutation testing ------------------------------------------------------------------------------


def test_the_schedule_strategy_smooths_with_the_epochs_epsilon():
    y = torch.tensor([0, 2])
    # linear from 0.2 over 4 epochs: epoch 1 has 0.2 x (1 - 1/4) = 0.15, i.e. 0.15 / 3 = 0.05 off each class
    targets = smoothed_targets(y, 3, "schedule", epsilon=0.2, epoch=1, total_epochs=4, schedule="linear")
    expected = torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9]])
    assert torch.allclose(targets, expected)
    # two stages over 5 epochs: the switch is epoch 5 // 2 = 2: epoch 1 smoothed, epoch 2 not
    assert scheduled_epsilon(0.3, 1, 5, "two_stage") == 0.3 and scheduled_epsilon(0.3, 2, 5, "two_stage") == 0.0
    # a given switch epoch is used (not half of the epochs): epoch 2 of 4 is still smoothed when the switch is 3
    two_stage = {"epsilon": 0.3, "total_epochs": 4, "schedule": "two_stage", "switch_epoch": 3}
    before = smoothed_targets(y, 3, "schedule", epoch=2, **two_stage)
    assert torch.allclose(before, torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]))
    after = smoothed_targets(y, 3, "schedule", epoch=3, **two_stage)
    assert torch.equal(after, torch.nn.functional.one_hot(y, 3).float())
    with pytest.raises(ValueError, match="confidence label smoothing needs the logits"):
        smoothed_targets(y, 3, "confidence", epsilon=0.1)
    with pytest.raises(ValueError, match="label_smoothing.name='x' is unknown; available: none, fixed, schedule, conf"):
        smoothed_targets(y, 3, "x")


def test_online_smoothing_normalises_each_class_sums_by_their_total():
    ols = OnlineLabelSmoothing(2, alpha=0.5)
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.7, 0.3]]))  # two right answers of class 0: sums 1.6 and 0.4
    ols.targets(logits, torch.tensor([0, 0]))
    ols.end_epoch()
    assert torch.allclose(ols.soft[:, 0], torch.tensor([0.8, 0.2]))
    assert torch.allclose(ols.soft[:, 1], torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"name": "online", "alpha": True}, "label_smoothing.alpha=True must be in"),
        ({"name": "online", "alpha": "a"}, "label_smoothing.alpha='a' must be in"),
        ({"name": "online", "alpha": 1.5}, "label_smoothing.alpha=1.5 must be in"),
        ({"name": "schedule", "switch_epoch": -1}, "label_smoothing.switch_epoch=-1 must be an epoch number or null"),
        ({"name": "schedule", "switch_epoch": "3"}, "label_smoothing.switch_epoch='3' must be an epoch number"),
        ({"name": "smooth"}, "label_smoothing.name='smooth' is unknown; available: none, fixed, schedule, confidence, "
                             "online"),
        ({"name": "schedule", "schedule": "step"}, "label_smoothing.schedule='step' is unknown; available: linear, "
                                                   "cosine, two_stage"),
    ],
)  # fmt: skip
def test_label_smoothing_settings_that_cannot_mean_anything(settings, message):
    from emg_lightning.losses.label_smoothing import LabelSmoothing
    from emg_lightning.runtime.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        LabelSmoothing.from_settings(settings)


def test_label_smoothing_settings_at_their_edges_are_accepted():
    from emg_lightning.losses.label_smoothing import LabelSmoothing

    LabelSmoothing.from_settings({"name": "online", "alpha": 0.0})
    LabelSmoothing.from_settings({"name": "online", "alpha": 1.0})
    LabelSmoothing.from_settings({"name": "schedule", "epsilon": 0.1, "schedule": "two_stage", "switch_epoch": 0})
    with pytest.raises(ValueError, match="label_smoothing.schedule='step' is unknown; available: linear, cosine, two"):
        scheduled_epsilon(0.1, 0, 4, "step")
