"""Paired comparison of cross-validations of the same folds and subjects (the library behind emg-compare).

Each subject contributes one paired difference per level: its accuracy under model B minus under model A (windows
or records correct, or the subject's own vote; averaged over each model's seeds). Reported per level: both pooled
accuracies, the mean per-subject difference, a paired subject-clustered bootstrap interval of the difference in
pooled accuracy, the two-sided Wilcoxon signed-rank test over subjects and its rank-biserial effect size, and a
one-line verdict. With more than two models each is compared with the first, p-values Holm-adjusted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from emg_lightning.metrics.aggregate import LEVELS, levels_of, pool
from emg_lightning.metrics.paired import exact_differences, holm, paired_bootstrap, signed_rank_test
from emg_lightning.reports.cv_summary import finished_folds
from emg_lightning.runtime.errors import DataError
from emg_lightning.runtime.files import atomic_save_figure, atomic_write_json, atomic_write_text

ALPHA = 0.05


def load_cv(cv_dir: str | Path) -> dict:
    """A finished CV folder's predictions, refused when partial (a comparison needs every fold of both)."""
    cv_dir = Path(cv_dir)
    folds, classes, _, protocol, missing = finished_folds(cv_dir)
    if missing:
        raise DataError(
            f"{cv_dir} is a partial CV ({len(missing)} jobs missing): finish it with the same emg-cv command"
        )
    tests = {f["fold"]: frozenset(r["subject"] for r in f["rows"]) for f in folds}
    tested: dict[int, set] = {}  # fold -> the (subject, record, window) units it tested, over its seeds
    for f in folds:
        tested.setdefault(f["fold"], set()).update((r["subject"], r["record"], r.get("window")) for r in f["rows"])
    return {
        "name": cv_dir.name,
        "dir": str(cv_dir),
        "classes": classes,
        "protocol": protocol,
        "folds": folds,
        "fold_subjects": tests,
        "fold_units": tested,
        "seeds": sorted({f["seed"] for f in folds}, key=str),
        "levels": levels_of([r for f in folds for r in f["rows"]], str(cv_dir)),
    }


def check_comparable(cvs: list[dict]) -> None:
    """Same classes, split, leakage, fold -> test-subject assignment and tested recordings (and windows, where both
    have a window level); no folder twice; otherwise a one-line refusal."""
    first = cvs[0]
    seen: dict[Path, str] = {}
    for cv in cvs:
        resolved = Path(cv["dir"]).resolve()
        if resolved in seen:
            raise DataError(
                f"{cv['dir']} is given twice ({seen[resolved]}): a folder compared with itself differs by nothing"
            )
        seen[resolved] = cv["dir"]
    for other in cvs[1:]:
        pair = f"{first['dir']} and {other['dir']}"
        if other["classes"] != first["classes"]:
            raise DataError(f"{pair} have different classes ({first['classes']} vs {other['classes']})")
        for key in ("split", "leaky"):
            if other["protocol"].get(key) != first["protocol"].get(key):
                raise DataError(
                    f"{pair} differ in {key} ({first['protocol'].get(key)} vs {other['protocol'].get(key)})"
                    f": a paired comparison needs the same split"
                )
        if set(other["fold_subjects"]) != set(first["fold_subjects"]):
            raise DataError(
                f"{pair} have different folds ({sorted(first['fold_subjects'])} vs {sorted(other['fold_subjects'])})"
            )
        for fold, subjects in first["fold_subjects"].items():
            if other["fold_subjects"][fold] != subjects:
                raise DataError(
                    f"{pair}: fold {fold} tests {sorted(subjects)} in one and "
                    f"{sorted(other['fold_subjects'][fold])} in the other: not the same split"
                )
        with_windows = "window" in first["levels"] and "window" in other["levels"]
        for fold in first["fold_units"]:
            units_a, units_b = first["fold_units"][fold], other["fold_units"][fold]
            if not with_windows:  # a model of whole records: the same recordings
                units_a, units_b = {u[:2] for u in units_a}, {u[:2] for u in units_b}
            if units_a != units_b:
                what = "windows" if with_windows else "recordings"
                example = sorted(units_a ^ units_b, key=str)[0]
                raise DataError(
                    f"{pair}: fold {fold} tested different {what} (e.g. {example} in one only): the data settings "
                    f"(window, hop, rate, quality rules, muscles) differ: paired comparisons and ensembles need the "
                    f"same test data"
                )


def per_subject(cv: dict, level: str) -> dict[str, tuple[float, float]]:
    """subject -> (correct units, units) at ``level``, each averaged over the CV's seeds."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for seed in cv["seeds"]:
        rows = [r for f in cv["folds"] if f["seed"] == seed for r in f["rows"]]
        for label, probabilities, subject in pool(rows, level):
            totals[subject][0] += float(cv["classes"][int(np.argmax(probabilities))] == label)
            totals[subject][1] += 1.0
    return {s: (c / len(cv["seeds"]), n / len(cv["seeds"])) for s, (c, n) in totals.items()}


def compare_pair(a: dict, b: dict, level: str, resamples: int) -> dict:
    left, right = per_subject(a, level), per_subject(b, level)
    subjects = sorted(left)
    correct_a = np.array([left[s][0] for s in subjects])
    units_a = np.array([left[s][1] for s in subjects])
    correct_b = np.array([right[s][0] for s in subjects])
    units_b = np.array([right[s][1] for s in subjects])
    accuracy_a, accuracy_b = correct_a / units_a, correct_b / units_b
    differences = exact_differences(accuracy_b - accuracy_a)
    test = signed_rank_test(differences)
    low, high = paired_bootstrap(correct_a, units_a, correct_b, units_b, resamples=resamples)
    return {
        "level": level,
        "subjects": subjects,
        "accuracy_a": accuracy_a.tolist(),
        "accuracy_b": accuracy_b.tolist(),
        "pooled_a": float(correct_a.sum() / units_a.sum()),
        "pooled_b": float(correct_b.sum() / units_b.sum()),
        "mean_difference": float(differences.mean()),
        "better_b": int((differences > 0).sum()),
        "better_a": int((differences < 0).sum()),
        "ties": int((differences == 0).sum()),
        "bootstrap_interval": [low, high],
        "wilcoxon": test,
    }


def judge(comparisons: list[dict]) -> None:
    """Holm-adjust the p-values of several models against one baseline, per level, then write each row's verdict."""
    for level_index in range(len(comparisons[0]["levels"])):
        tests = [c["levels"][level_index]["wilcoxon"] for c in comparisons]
        for test, adjusted in zip(tests, holm([t["p_value"] for t in tests])):
            if len(tests) > 1:
                test["p_adjusted"] = adjusted
    for c in comparisons:
        for row in c["levels"]:
            row["verdict"] = verdict(row, c["a"], c["b"])


def verdict(row: dict, a: str, b: str) -> str:
    """A win only when the paired test and the interval agree, in the same direction: the test's direction is that
    of its signed ranks (W+ > W-: B better), the interval's that of the pooled difference."""
    low, high = row["bootstrap_interval"]
    p = row["wilcoxon"].get("p_adjusted", row["wilcoxon"]["p_value"])
    difference = row["pooled_b"] - row["pooled_a"]
    evidence = f"p = {p:.3g}, 95 % CI of {b} - {a}: [{low:+.3f}, {high:+.3f}]"
    ranks_favour_b = row["wilcoxon"]["w_plus"] > row["wilcoxon"]["w_minus"]
    if p < ALPHA and (low > 0 or high < 0) and ranks_favour_b != (high < 0):
        better, worse = (b, a) if ranks_favour_b else (a, b)
        return f"{better} beats {worse} at {row['level']} level ({difference:+.3f} pooled accuracy; {evidence})"
    if p < ALPHA and (low > 0 or high < 0):
        return (
            f"weak evidence at {row['level']} level: the test and the interval point in opposite directions "
            f"({difference:+.3f}; {evidence})"
        )
    if p < ALPHA or low > 0 or high < 0:
        return (
            f"weak evidence at {row['level']} level: the test and the interval disagree ({difference:+.3f}; {evidence})"
        )
    return f"no evidence of a difference at {row['level']} level ({difference:+.3f}; {evidence})"


def compare(cv_dirs: list[str | Path], out_dir: str | Path, resamples: int = 2000) -> dict:
    cvs = [load_cv(d) for d in cv_dirs]
    check_comparable(cvs)
    baseline = cvs[0]
    # a model of whole records has no window level: compared at the levels every CV has
    levels = [level for level in LEVELS if all(level in cv["levels"] for cv in cvs)]
    comparisons = []
    for other in cvs[1:]:
        rows = [compare_pair(baseline, other, level, resamples) for level in levels]
        comparisons.append(
            {
                "a": baseline["name"],
                "b": other["name"],
                "a_dir": baseline["dir"],
                "b_dir": other["dir"],
                "a_seeds": baseline["seeds"],
                "b_seeds": other["seeds"],
                "levels": rows,
            }
        )
    judge(comparisons)
    result = {
        "protocol": baseline["protocol"],
        "classes": baseline["classes"],
        "comparisons": comparisons,
        "levels": levels,
        "alpha": ALPHA,
        "resamples": resamples,
    }
    out_dir = Path(out_dir)
    result["plot"] = plot(result, out_dir)
    atomic_write_json(out_dir / "comparison.json", result)
    atomic_write_text(out_dir / "comparison.md", markdown(result))
    return result


def markdown(result: dict) -> str:
    p = result["protocol"]
    lines = [
        "# Paired comparison",
        "",
        f"- Split: `{p['split']}`{' (LEAKY)' if p.get('leaky') else ''}; the same folds and test subjects in every "
        "CV folder (checked).",
        "- Unit: the subject. Per level each subject's accuracy under B minus under A (averaged over each model's "
        "seeds); Wilcoxon signed-rank test over subjects, two-sided (H1: B and A differ, either direction), zero "
        "differences dropped, exact p for up to 60 subjects; effect size = rank-biserial correlation (+1: every "
        f"subject better with B). Interval: paired bootstrap of pooled accuracy B - A, {result['resamples']} "
        "resamples of whole subjects. With tens of subjects only large differences can be told from noise.",
    ]
    if "window" not in result.get("levels", LEVELS):
        lines.append(
            "- No window level: a model here predicts whole records (its features describe records), so the "
            "comparison is per record and per subject."
        )
    if len(result["comparisons"]) > 1:
        lines.append("- Several models against the first: p-values Holm-adjusted across them (p_adj).")
    for c in result["comparisons"]:
        lines += [
            "",
            f"## A = `{c['a']}` (seeds {c['a_seeds']}) vs B = `{c['b']}` (seeds {c['b_seeds']})",
            "",
            "| level | subjects | pooled acc A | pooled acc B | B - A [95 % CI] | B better / A better / tied | "
            "Wilcoxon p | rank-biserial |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in c["levels"]:
            t = row["wilcoxon"]
            low, high = row["bootstrap_interval"]
            p_text = f"{t['p_value']:.3g}" + (f" (p_adj {t['p_adjusted']:.3g})" if "p_adjusted" in t else "")
            lines.append(
                f"| {row['level']} | {len(row['subjects'])} | {row['pooled_a']:.3f} | {row['pooled_b']:.3f} | "
                f"{row['pooled_b'] - row['pooled_a']:+.3f} [{low:+.3f}, {high:+.3f}] | {row['better_b']} / "
                f"{row['better_a']} / {row['ties']} | {p_text} ({t['method']}) | {t['rank_biserial']:+.2f} |"
            )
        lines += [""] + [f"- {row['verdict']}" for row in c["levels"]]
    return "\n".join(lines) + "\n"


# up to this many subjects the plot names each one; beyond, lines are grouped and counted
LABELLED_SUBJECTS = 40


def _colour(a: float, b: float) -> str:
    return "tab:green" if b > a else "tab:red" if b < a else "tab:gray"


def plot(result: dict, out_dir: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comparisons = result["comparisons"]
    columns = len(comparisons[0]["levels"])
    fig, axes = plt.subplots(len(comparisons), columns, figsize=(4.0 * columns, 3.6 * len(comparisons)), squeeze=False)
    for row_axes, c in zip(axes, comparisons):
        for ax, row in zip(row_axes, c["levels"]):
            pairs = list(zip(row["subjects"], row["accuracy_a"], row["accuracy_b"]))
            if len(pairs) <= LABELLED_SUBJECTS:  # few subjects: one named line each
                for subject, a, b in pairs:
                    ax.plot([0, 1], [a, b], marker="o", color=_colour(a, b), alpha=0.7, linewidth=1)
                    ax.annotate(subject, (1.02, b), fontsize=6, va="center")
            else:  # many: one line per distinct (A, B) pair, as wide as the subjects on it, with their count
                counts = Counter((round(a, 3), round(b, 3)) for _, a, b in pairs)
                most = max(counts.values())
                for (a, b), n in sorted(counts.items(), key=lambda item: item[1]):
                    ax.plot([0, 1], [a, b], marker="o", color=_colour(a, b), alpha=0.6, linewidth=0.8 + 6 * n / most)
                    if n >= max(2, most // 20):  # worse, tied and better lines counted at different places
                        x = 0.3 if b < a else 0.7 if b > a else 0.5
                        ax.annotate(f"{n}", (x, a + (b - a) * x), fontsize=7, ha="center", va="bottom")
            ax.set_xticks([0, 1], [c["a"][:18], c["b"][:18]], fontsize=7)
            ax.set_xlim(-0.15, 1.25)
            ax.set_ylim(-0.05, 1.05)
            ax.set_ylabel(f"{row['level']} accuracy per subject")
            p = row["wilcoxon"].get("p_adjusted", row["wilcoxon"]["p_value"])
            ax.set_title(f"{row['level']}: B-A {row['pooled_b'] - row['pooled_a']:+.3f}, p={p:.2g}", fontsize=9)
    fig.tight_layout()
    name = atomic_save_figure(fig, out_dir / "paired_subjects.png")
    plt.close(fig)
    return name
