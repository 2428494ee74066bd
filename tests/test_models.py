import pytest
import torch
from torch import nn

from emg_lightning.models import ALSNet, ResEMGNet, build_model, count_parameters


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


def test_alsnet_he_normal_init_scale():
    torch.manual_seed(0)
    conv = ALSNet().features[6]  # 64 -> 128, kernel 7: fan_in 448
    expected = (2 / 448) ** 0.5
    std = conv.weight.std().item()
    assert 0.8 * expected < std < expected  # truncated at 2 std: a bit below the nominal value


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
    with pytest.raises(KeyError, match="available: alsnet, resemgnet"):
        build_model("lstm")


def test_models_backpropagate():
    for net in (ALSNet(num_classes=3), ResEMGNet(num_classes=3)):
        out = net(torch.randn(4, 1, 500))
        out.sum().backward()
        assert all(p.grad is not None for p in net.parameters())
