"""Which parts of the raw signal drove a prediction (the library behind emg-explain): integrated gradients and
saliency (captum) of a window network's probability for a class, drawn under the EMG, with a model-randomisation
sanity check (Adebayo et al., 2018): the same attributions from the network with re-initialised weights must
differ, or the pictures show the input, not what the model learned.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy import stats
from torch import nn

from emg_lightning.inference.predict import ProbabilityGraph, TrainedModel
from emg_lightning.runtime.errors import ConfigError

METHODS = ("integrated_gradients", "saliency")
# Rank correlation of |attributions| (trained vs re-initialised network) above which the check fails
SANITY_MAX_CORRELATION = 0.5
SMOOTH_MS = 10.0  # attribution traces are drawn as a moving average of this width


def attributions(graph: nn.Module, windows: np.ndarray, targets: np.ndarray, steps: int = 32) -> dict[str, np.ndarray]:
    """Per method, (windows, samples) attributions of ``graph``'s probability of each window's target class."""
    from captum.attr import IntegratedGradients, Saliency

    x = torch.from_numpy(np.ascontiguousarray(windows[:, None, :], dtype=np.float32)).requires_grad_()
    target = torch.from_numpy(targets.astype(np.int64))
    integrated = IntegratedGradients(graph).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=steps)
    saliency = Saliency(graph).attribute(x, target=target, abs=True)
    return {
        "integrated_gradients": integrated.detach()[:, 0].numpy(),
        "saliency": saliency.detach()[:, 0].numpy(),
    }


def reinitialised(graph: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``graph`` whose every layer with parameters is re-initialised (BatchNorm statistics reset too)."""
    torch.manual_seed(seed)
    clone = copy.deepcopy(graph)
    for module in clone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    return clone.eval()


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over windows of Spearman's correlation between |a| and |b| (0 for a constant row)."""
    values = []
    for row_a, row_b in zip(np.abs(a), np.abs(b)):
        if np.ptp(row_a) == 0 or np.ptp(row_b) == 0:
            values.append(0.0)
        else:
            values.append(float(stats.spearmanr(row_a, row_b).statistic))
    return float(np.mean(values))


def explain_windows(model: TrainedModel, windows_uv: np.ndarray, target: str | None = None) -> dict:
    """Probabilities, targets, attributions by method, and the sanity check, for windows (n, samples) in uV."""
    if model.features is not None:
        raise ConfigError(
            f"model {model.name} reads {model.features} feature vectors, not the raw signal: attributions on the "
            f"EMG need a window network (alsnet, resemgnet, features)"
        )
    if target is not None and target not in model.classes:
        raise ConfigError(f"--target {target!r} is not one of the model's classes {model.classes}")
    graph = ProbabilityGraph(model).eval()
    with torch.no_grad():
        probabilities = graph(torch.from_numpy(windows_uv[:, None, :].astype(np.float32))).numpy()
    targets = np.full(len(windows_uv), model.classes.index(target)) if target else probabilities.argmax(axis=1)
    trained = attributions(graph, windows_uv, targets)
    random = attributions(reinitialised(graph), windows_uv, targets)
    correlations = {m: rank_correlation(trained[m], random[m]) for m in METHODS}
    return {
        "probabilities": probabilities,
        "targets": targets,
        "attributions": trained,
        "randomised": random,
        "sanity": {
            "test": "model randomisation: every layer re-initialised, same windows and targets",
            "rank_correlation": correlations,
            "max_allowed": SANITY_MAX_CORRELATION,
            "passed": {m: c < SANITY_MAX_CORRELATION for m, c in correlations.items()},
        },
    }


def smooth(trace: np.ndarray, sample_rate: float) -> np.ndarray:
    width = max(1, round(SMOOTH_MS * sample_rate / 1000))
    return np.convolve(trace, np.ones(width) / width, mode="same")


def draw(
    result: dict, windows_uv: np.ndarray, starts_s: np.ndarray, sample_rate: float, classes: list[str], title: str
):
    """EMG, integrated gradients, saliency and per-window class probabilities, window after window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, samples = windows_uv.shape
    time = (np.arange(samples) / sample_rate)[None, :] + starts_s[:, None]
    fig, axes = plt.subplots(4, 1, figsize=(min(4 + 3 * n, 24), 8.5), sharex=True,
                             gridspec_kw={"height_ratios": [3, 2, 2, 1.4]})  # fmt: skip
    for k in range(n):
        axes[0].plot(time[k], windows_uv[k], lw=0.5, color="black")
        ig = smooth(result["attributions"]["integrated_gradients"][k], sample_rate)
        axes[1].fill_between(time[k], ig, where=ig >= 0, color="tab:red", lw=0)
        axes[1].fill_between(time[k], ig, where=ig < 0, color="tab:blue", lw=0)
        axes[2].plot(time[k], smooth(result["attributions"]["saliency"][k], sample_rate), lw=0.8, color="tab:purple")
        for ax in axes:
            ax.axvline(starts_s[k], color="grey", lw=0.5, ls=":")
        bottom = 0.0
        for c, name in enumerate(classes):
            p = float(result["probabilities"][k, c])
            axes[3].bar(starts_s[k] + samples / sample_rate / 2, p, bottom=bottom, width=samples / sample_rate * 0.9,
                        color=f"C{c}", label=name if k == 0 else None)  # fmt: skip
            bottom += p
        target = classes[int(result["targets"][k])]
        axes[0].text(starts_s[k], 1.01, f" explained: {target}", fontsize=8, transform=axes[0].get_xaxis_transform())
    passed = result["sanity"]["passed"]
    check = {m: "sanity check passed" if passed[m] else "sanity check FAILED:\ndo not read" for m in METHODS}
    axes[0].set_ylabel("EMG (uV)")
    axes[1].set_ylabel(f"integrated gradients\n({SMOOTH_MS:g}-ms mean)\n{check['integrated_gradients']}", fontsize=8)
    axes[2].set_ylabel(f"|saliency|\n({SMOOTH_MS:g}-ms mean)\n{check['saliency']}", fontsize=8)
    axes[3].set_ylabel("probability")
    axes[3].set_ylim(0, 1)
    axes[3].legend(loc="upper right", fontsize=8, ncol=len(classes))
    axes[3].set_xlabel("time in the record (s)")
    axes[0].set_title(title, fontsize=10, pad=14)
    fig.tight_layout()
    return fig


def draw_sanity(result: dict, window_uv: np.ndarray, sample_rate: float):
    """The first window's integrated gradients from the trained and from the re-initialised network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time = np.arange(len(window_uv)) / sample_rate
    correlation = result["sanity"]["rank_correlation"]["integrated_gradients"]
    fig, axes = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True)
    axes[0].plot(time, window_uv, lw=0.5, color="black")
    axes[0].set_ylabel("EMG (uV)")
    axes[1].plot(time, smooth(result["attributions"]["integrated_gradients"][0], sample_rate), color="tab:red", lw=0.8)
    axes[1].set_ylabel("trained")
    axes[2].plot(time, smooth(result["randomised"]["integrated_gradients"][0], sample_rate), color="tab:gray", lw=0.8)
    axes[2].set_ylabel("re-initialised")
    axes[2].set_xlabel("time in the window (s)")
    verdict = "passed" if result["sanity"]["passed"]["integrated_gradients"] else "FAILED"
    axes[0].set_title(
        f"sanity check {verdict}: rank correlation of |IG|, trained vs re-initialised network = {correlation:.2f} "
        f"(must be < {SANITY_MAX_CORRELATION})",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
