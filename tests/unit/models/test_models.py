import math

import pytest
import torch
from torch import nn

from emg_lightning.features.basic import emg_features, feature_count, feature_names
from emg_lightning.models import (
    MODELS,
    ALSNet,
    EMGFeatureNet,
    ResEMGNet,
    build_model,
    count_parameters,
    input_kind,
)


def test_alsnet_binary_head_has_the_papers_85249_parameters():
    assert count_parameters(ALSNet(num_classes=2)) == 85_249


def test_alsnet_three_class_head_adds_two_outputs():
    # Linear 64 -> 3 instead of 64 -> 1: 2 * 64 weights + 2 biases more
    assert count_parameters(ALSNet(num_classes=3)) == 85_249 + 130


@pytest.mark.parametrize("length", [45, 4687, 23437])
def test_alsnet_accepts_any_length(length):
    net = ALSNet(num_classes=3).eval()
    assert net(torch.randn(2, 1, length)).shape == (2, 3)
    assert ALSNet(num_classes=2).eval()(torch.randn(2, 1, length)).shape == (2, 1)


def test_alsnet_layer_order_and_keras_batchnorm():
    net = ALSNet()
    kinds = [type(m) for m in net.features]
    assert kinds == [nn.Conv1d, nn.ReLU, nn.BatchNorm1d] * 3  # BN after the activation, as the paper
    convs = [m for m in net.features if isinstance(m, nn.Conv1d)]
    assert [(c.kernel_size[0], c.dilation[0], c.out_channels) for c in convs] == [(11, 1, 32), (9, 2, 64), (7, 3, 128)]
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    assert all(b.eps == 1e-3 and b.momentum == 0.01 for b in bns)


@pytest.mark.parametrize("layer, fan_in", [(3, 32 * 9), (6, 64 * 7)])
def test_alsnet_convolutions_start_as_keras_he_normal(layer, fan_in):
    """Keras' he_normal draws from a normal truncated at two of its standard deviations, widened so that the
    truncated draws themselves have standard deviation sqrt(2 / fan_in) (scipy gives the truncation's factor)."""
    from scipy.stats import truncnorm

    torch.manual_seed(0)
    weights = ALSNet().features[layer].weight.detach().double().flatten()
    target = (2 / fan_in) ** 0.5
    assert weights.std().item() == pytest.approx(target, rel=0.03)  # 18,432 / 57,344 draws: SE about 0.5 %
    bound = 2 * target / truncnorm(-2, 2).std()  # the cut, at 2 sigma of the widened normal
    assert weights.abs().max().item() <= bound
    assert weights.abs().max().item() > 0.95 * bound  # truncated there, not narrower


@pytest.mark.parametrize("length", [64, 2343, 23437])
def test_resemgnet_accepts_any_length(length):
    net = ResEMGNet(num_classes=3).eval()
    assert net(torch.randn(3, 1, length)).shape == (3, 3)


def test_resemgnet_is_configurable_and_light():
    default = ResEMGNet()
    assert count_parameters(default) < 200_000
    wide = ResEMGNet(widths=(32, 64), kernels=(9, 9), strides=(4, 4), dilations=(1, 3), pooling="max")
    assert wide(torch.randn(2, 1, 1000)).shape == (2, 3)
    with pytest.raises(ValueError, match="same non-zero length"):
        ResEMGNet(widths=(16, 32), kernels=(7,), strides=(2, 2), dilations=(1, 1))


def test_build_model_names_unknown_models():
    assert isinstance(build_model("alsnet", num_classes=2), ALSNet)
    with pytest.raises(KeyError, match="available: alsnet, feature_attention_mil, feature_linear, features, resemgnet"):
        build_model("lstm")


def test_models_backpropagate():
    for net in (ALSNet(num_classes=3), ResEMGNet(num_classes=3), ResEMGNet(**ALSNET_LINEAGE)):
        out = net(torch.randn(4, 1, 500))
        out.sum().backward()
        assert all(p.grad is not None for p in net.parameters())


# conf/model/resemgnet_alsnet_lineage.yaml
ALSNET_LINEAGE = dict(
    num_classes=3,
    stem_channels=0,
    widths=(32, 64, 128),
    kernels=(11, 9, 7),
    strides=(1, 1, 1),
    dilations=(1, 2, 3),
    convs_per_block=1,
    dropout=0.0,
    pooling="max",
)


def test_resemgnet_alsnet_lineage_wraps_alsnets_stages_in_residual_blocks():
    net = ResEMGNet(**ALSNET_LINEAGE)
    # by hand from the architecture: each block a bias-free conv (in x out x kernel) + BN (2 x out), and a 1x1
    # shortcut conv (in x out) + BN where the width changes; then Linear(128 -> 3)
    blocks = [(1, 32, 11), (32, 64, 9), (64, 128, 7)]
    expected = sum(i * o * k + 2 * o + i * o + 2 * o for i, o, k in blocks) + 128 * 3 + 3
    assert count_parameters(net) == expected == 87_683  # the number the config and README state
    assert isinstance(net.stem, torch.nn.Identity)
    convs = [m for m in net.blocks.modules() if isinstance(m, torch.nn.Conv1d) and m.kernel_size[0] > 1]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.dilation[0]) for c in convs] == [
        (1, 32, 11, 1),
        (32, 64, 9, 2),
        (64, 128, 7, 3),
    ]  # ALSNet's stages, one convolution per block
    projections = [b.shortcut[0] for b in net.blocks]
    assert all(p.kernel_size == (1,) for p in projections)
    assert net(torch.randn(2, 1, 2343)).shape == (2, 3)


def sine(frequency: float, sample_rate: float, amplitude: float = 100.0, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(sample_rate * seconds), dtype=torch.float64) / sample_rate
    return (amplitude * torch.sin(2 * math.pi * frequency * t))[None].float()


def test_emg_features_of_a_sine_match_their_formulas():
    rate, f, a = 10_000.0, 250.0, 100.0
    names = feature_names(rate)
    values = dict(zip(names, emg_features(sine(f, rate, a), rate)[0].tolist()))
    assert len(values) == feature_count(rate) == len(names)
    per_period = int(rate / f)  # 40 samples: the mean |x| of the sampled sine, a bit below 2A/pi
    assert math.exp(values["log_mav"]) == pytest.approx(
        a * sum(abs(math.sin(2 * math.pi * k / per_period)) for k in range(per_period)) / per_period, rel=1e-4
    )
    assert math.exp(values["log_rms"]) == pytest.approx(a / math.sqrt(2), rel=1e-3)
    assert math.exp(values["log_peak"]) == pytest.approx(a, rel=1e-3)
    # waveform length per sample: 4 A f / fs for a sine
    assert math.exp(values["log_waveform_length"]) == pytest.approx(4 * a * f / rate, rel=1e-2)
    assert values["zero_crossing_rate"] == pytest.approx(2 * f / rate, abs=2 / rate)
    assert values["slope_sign_change_rate"] == pytest.approx(2 * f / rate, abs=2 / rate)
    # Hjorth mobility of a sine = 2 pi f / fs (per sample) up to the finite difference; complexity = 1
    assert math.exp(values["log_hjorth_mobility"]) == pytest.approx(2 * math.sin(math.pi * f / rate), rel=1e-2)
    assert math.exp(values["log_hjorth_complexity"]) == pytest.approx(1.0, abs=1e-2)
    assert values["skewness"] == pytest.approx(0.0, abs=1e-3)
    assert values["excess_kurtosis"] == pytest.approx(-1.5, abs=1e-2)
    assert math.exp(values["log_mean_frequency"]) - 1 == pytest.approx(f, rel=1e-3)
    assert math.exp(values["log_median_frequency"]) - 1 == pytest.approx(f, abs=1.0)
    bands = {k: math.exp(v) for k, v in values.items() if k.startswith("log_power_")}
    assert bands["log_power_200_500"] == pytest.approx(1.0, abs=1e-3)  # all power in the 200-500 Hz band
    assert sum(bands.values()) == pytest.approx(1.0, abs=1e-3)
    assert "log_power_5000_10000" not in bands  # above Nyquist: dropped


def test_emg_features_do_not_depend_on_dc_offset_and_count_noise_crossings_only_above_threshold():
    rate = 2343.75
    x = sine(50.0, rate) + 0.5 * torch.randn(1, 2343)
    shifted = emg_features(x + 300.0, rate)
    assert torch.allclose(emg_features(x, rate), shifted, atol=1e-4)
    noisy = dict(zip(feature_names(rate), emg_features(x, rate)[0].tolist()))
    assert noisy["zero_crossing_rate"] == pytest.approx(2 * 50 / rate, abs=4 / rate)


def test_feature_baseline_trains_only_its_head():
    net = EMGFeatureNet(num_classes=3, sample_rate=2343.75, hidden=(16,))
    assert count_parameters(net) == (feature_count(2343.75) * 16 + 16) + (16 * 3 + 3)
    out = net(torch.randn(8, 1, 2343) * 50)
    assert out.shape == (8, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="sample_rate must be a positive"):
        EMGFeatureNet(sample_rate=0)


def test_feature_baseline_weights_saved_with_a_batchnorm_load_with_the_same_standardisation():
    """Earlier versions standardised with BatchNorm1d(affine=False) (classifier.0) and a head after it: such weights
    load, and evaluate every window as the BatchNorm did."""
    torch.manual_seed(0)
    width = feature_count(2343.75)
    norm, hidden, head = nn.BatchNorm1d(width, affine=False), nn.Linear(width, 16), nn.Linear(16, 3)
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2.0)
    old = {
        "classifier.0.running_mean": norm.running_mean,
        "classifier.0.running_var": norm.running_var,
        "classifier.0.num_batches_tracked": torch.tensor(7),
        "classifier.1.weight": hidden.weight,
        "classifier.1.bias": hidden.bias,
        "classifier.4.weight": head.weight,
        "classifier.4.bias": head.bias,
    }
    net = EMGFeatureNet(num_classes=3, sample_rate=2343.75, hidden=(16,))
    net.load_state_dict(old)
    x = torch.randn(4, 1, 2343) * 50
    with torch.no_grad():
        before = head(torch.relu(hidden(norm.eval()(emg_features(x[:, 0], 2343.75)))))
        torch.testing.assert_close(net.eval()(x), before)


# -- every registered network: the contract a new model must meet ---------------------------------------------------

REGISTRY = sorted(MODELS)


# what the data fills in for each network (network_settings): the windows' rate, the feature vectors' width
FILLED_IN = {
    "features": {"sample_rate": 2343.75},
    "feature_linear": {"in_features": 88},
    "feature_attention_mil": {"in_features": 88},
}


def registered(name: str, num_classes: int = 3) -> nn.Module:
    return build_model(name, num_classes=num_classes, **FILLED_IN.get(name, {}))


def example_input(name: str, batch: int, length: int = 2343) -> torch.Tensor:
    """Windows (batch, 1, length) in microvolts, or feature vectors (batch, in_features) for a feature model."""
    if input_kind(name) == "features":
        return torch.randn(batch, FILLED_IN[name]["in_features"])
    return torch.randn(batch, 1, length) * 50


@pytest.mark.parametrize("name", REGISTRY)
@pytest.mark.parametrize("length", [1171, 2343, 4687])
def test_every_network_maps_any_window_length_to_class_logits(name, length):
    torch.manual_seed(0)
    net = registered(name).eval()
    out = net(example_input(name, 4, length))
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    assert net.__doc__ and all(word in net.__doc__ for word in ("Input:", "Output:", "Parameters:", "Paper:"))


@pytest.mark.parametrize("name", REGISTRY)
def test_every_network_reloads_from_a_checkpoint_with_identical_outputs(name, tmp_path):
    import lightning as L

    from emg_lightning.classifier import EMGClassifier

    torch.manual_seed(0)
    model = EMGClassifier(net={"name": name, **FILLED_IN.get(name, {})}, class_names=["normal", "als", "myopathy"])
    model.net(example_input(name, 8))  # move BatchNorm running statistics away from their initial values
    for buffer in model.net.buffers():  # and any other state (a feature model's standardisation)
        if buffer.is_floating_point():
            buffer.add_(torch.rand_like(buffer))
    model.eval()
    path = tmp_path / "model.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": L.__version__,
        },
        path,
    )
    reloaded = EMGClassifier.load_from_checkpoint(path, map_location="cpu").eval()  # weights_only: primitives
    x = example_input(name, 3)
    assert torch.equal(model(x), reloaded(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", REGISTRY)
def test_every_network_compiles(name):
    torch.manual_seed(0)
    net = registered(name).eval()
    x = example_input(name, 2)
    with torch.no_grad():
        eager = net(x)
        compiled = torch.compile(net)(x)
    assert torch.allclose(eager, compiled, rtol=1e-4, atol=1e-4)


def test_resemgnet_default_parameter_count_from_its_architecture():
    # stem: conv 1->16, kernel 11, no bias + BN; blocks of two bias-free convs + BN each, a 1x1 shortcut + BN where
    # the width or the stride changes (all four here); head Linear(2 x 64 -> 3) (average and max pooled)
    stem = 1 * 16 * 11 + 2 * 16
    blocks = [(16, 16, 7), (16, 32, 7), (32, 64, 5), (64, 64, 5)]
    body = sum(i * o * k + 2 * o + o * o * k + 2 * o + i * o + 2 * o for i, o, k in blocks)
    assert count_parameters(ResEMGNet(num_classes=3)) == stem + body + 128 * 3 + 3 == 94_579
