"""Write the mutation-testing report (docs/mutation-report.md) from mutmut's results: per module, how many mutants
were killed; every survivor with its change and why no test can tell it from the code — from
scripts/mutation_equivalents.yaml (a reason per survivor, found by its function and mutated line) or a rule below;
the rest are listed as still to kill or explain, and entries that match no survivor as stale.

    python scripts/mutation_report.py [--results FILE ...] --out docs/mutation-report.md   (run in the folder of
    the mutmut run; make mutate calls it)

``--results``: files of ``mutmut results --all true`` from earlier partial runs (first wins: the newest first); the
current folder's results come first.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import yaml

MUTMUT = Path(".venv/bin/mutmut")

EXPLAINED = Path(__file__).with_name("mutation_equivalents.yaml")

# (pattern on the mutated line, why no test can tell the mutant from the code): changes of a kind, wherever they are
RULES = [
    (r"dtype=None|astype\(None\)|np\.asarray\([^,]+, \)|np\.array\(\[.*\], \)|np\.zeros\(\(.*\), \)",
     "a type argument dropped: numpy's or torch's default gives the same type here (float64 or float32 from "
     "floats, int64 from integers)"),
    (r"\.to\(None\)|device=None", "a device argument dropped: equal on the CPU (the GPU tests check devices)"),
    (r"XX", "a message wrapped in XX: the tests search for the message's words, which are unchanged"),
    (r"dim=\+1|dim=None\)|sum\(dim=\+1\)|log_softmax\(logits, \)", "a dimension named differently on 2-D input"),
]  # fmt: skip


def results(paths: list[Path]) -> dict[str, str]:
    current = subprocess.run([MUTMUT, "results", "--all", "true"], capture_output=True, text=True).stdout
    merged: dict[str, str] = {}
    for text in [current, *(p.read_text() for p in paths)]:
        for line in text.splitlines():
            if ": " in line:
                name, state = line.strip().rsplit(": ", 1)
                if state != "not checked":
                    merged.setdefault(name, state)
    names = [line.strip().rsplit(": ", 1)[0] for line in current.splitlines() if ": " in line]
    return {name: merged.get(name, "not checked") for name in names}


def change(name: str) -> tuple[str, str]:
    shown = subprocess.run([MUTMUT, "show", name], capture_output=True, text=True).stdout.splitlines()
    removed = [line[1:].strip() for line in shown if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in shown if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(removed), " / ".join(added)


def function_of(name: str) -> str:
    """``emg_lightning.features.qemg.x__turns__mutmut_2`` -> ``features.qemg._turns``; methods ``Class.method``."""
    module, rest = name.removeprefix("emg_lightning.").split(".x", 1)
    rest = rest.rsplit("__mutmut_", 1)[0]
    return f"{module}.{'.'.join(rest.split('ǁ')[1:]) if rest.startswith('ǁ') else rest.removeprefix('_')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, nargs="*", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    status = results(args.results)
    per_module: dict[str, Counter] = defaultdict(Counter)
    for name, state in status.items():
        per_module[name.split(".x")[0]][state] += 1
    lines = ["# Mutation report", "", "`make mutate` (mutmut, `[tool.mutmut]` of pyproject.toml); written by "
             "`scripts/mutation_report.py`.", "", "| module | mutants | killed | survived | killed % |",
             "|---|---|---|---|---|"]  # fmt: skip
    total = Counter()
    for module, counts in sorted(per_module.items()):
        n, killed = sum(counts.values()), counts["killed"] + counts["timeout"]
        total += counts
        lines.append(f"| `{module}` | {n} | {killed} | {counts['survived']} | {100 * killed / n:.1f} |")
    n, killed = sum(total.values()), total["killed"] + total["timeout"]
    lines += [
        f"| all | {n} | {killed} | {total['survived']} | {100 * killed / n:.1f} |",
        "",
        "Timeouts count as killed (the mutant never finished the tests); a mutant no test reaches counts as survived.",
        "",
        "## Survivors",
        "",
        "| mutant | code | mutated to | why it survives |",
        "|---|---|---|---|",
    ]
    explained = yaml.safe_load(EXPLAINED.read_text())
    used: set[int] = set()
    unexplained = 0
    for name in sorted(n for n, s in status.items() if s in ("survived", "no tests")):
        before, after = change(name)
        entry = next((i for i, e in enumerate(explained) if e["function"] == function_of(name) and e["to"] in after
                      and e.get("from", "") in before), None)  # fmt: skip
        used.update([] if entry is None else [entry])
        reason = explained[entry]["why"] if entry is not None else next(
            (why for pattern, why in RULES if re.search(pattern, after)), None)  # fmt: skip
        unexplained += reason is None
        cell = reason.replace("|", "\\|") if reason else "**to kill or explain**"
        short = name.removeprefix("emg_lightning.")
        before, after = (text.replace("|", "\\|") for text in (before, after))
        lines.append(f"| `{short}` | `{before[:90]}` | `{after[:90]}` | {cell} |".replace("|`", "| `"))
    stale = [e for i, e in enumerate(explained) if i not in used]
    if stale:
        lines += ["", "## Stale explanations", "", f"Entries of {EXPLAINED.name} that match no survivor (killed "
                  "since, or the code changed): delete them.", ""]  # fmt: skip
        lines += [f"- `{e['function']}`: `{e['to']}`" for e in stale]
    lines.insert(3, f"Survivors still to kill or explain: {unexplained}. Each other survivor's reason comes from "
                    f"`scripts/{EXPLAINED.name}` or, for changes of a kind, a rule of the script.\n")  # fmt: skip
    args.out.write_text("\n".join(lines) + "\n")
    print(
        f"{n} mutants, {killed} killed ({100 * killed / n:.1f} %), {unexplained} survivors unexplained, "
        f"{len(stale)} stale explanations"
    )


if __name__ == "__main__":
    main()
