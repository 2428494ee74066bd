"""The house's floors: dependency arrows run down, from the commands to the library, never back up or sideways."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "emg_lightning"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module named by an import statement in the file, at any depth (function-level imports count)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# the package's floors (sub-packages) besides the commands and the benchmarks
FLOORS = (
    "runtime", "features", "data", "models", "losses", "metrics", "run_files", "reports", "cv", "inference", "muap",
)  # fmt: skip
MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def imported(prefix: str, modules: dict[str, set[str]]) -> dict[str, list[str]]:
    return {
        m: sorted(i for i in imports if i == prefix or i.startswith(prefix + "."))
        for m, imports in modules.items()
        if any(i == prefix or i.startswith(prefix + ".") for i in imports)
    }


def test_the_module_table_sees_the_whole_package():
    assert "emg_lightning.cli.train" in MODULES and "emg_lightning.config" in MODULES
    assert "emg_lightning.training" in MODULES["emg_lightning.cli.train"]


def test_no_library_module_imports_a_command():
    library = {m: i for m, i in MODULES.items() if not m.startswith("emg_lightning.cli")}
    assert imported("emg_lightning.cli", library) == {}


def test_no_command_imports_another_command():
    for name, imports in MODULES.items():
        if name.startswith("emg_lightning.cli."):
            others = sorted(i for i in imports if i.startswith("emg_lightning.cli.") and not i.startswith(name))
            assert others == [], f"{name} imports {others}: move what they share into the library"


@pytest.mark.parametrize(
    "floor, forbidden",
    [
        # a network is reusable anywhere: no data, Lightning or Hydra
        ("emg_lightning.models", ("emg_lightning.data", "lightning", "hydra", "omegaconf", "emg_lightning.classifier")),
        # readers, windows, cache, splits, features: pure and fast to test (only the DataModule is Lightning code)
        ("emg_lightning.data.readers", ("lightning", "hydra", "omegaconf", "torch")),
        ("emg_lightning.data.windows", ("lightning", "hydra", "omegaconf", "torch")),
        ("emg_lightning.data.splits", ("lightning", "hydra", "omegaconf", "torch")),
        ("emg_lightning.data.cache", ("lightning", "hydra", "omegaconf", "torch")),
        # reports are recomputed from files on disk, never from training code
        (
            "emg_lightning.metrics.aggregate",
            ("lightning", "hydra", "emg_lightning.classifier", "emg_lightning.training"),
        ),
        ("emg_lightning.reports", ("lightning", "hydra", "emg_lightning.classifier", "emg_lightning.training")),
        ("emg_lightning.cv.identity", ("lightning", "hydra", "torch", "emg_lightning.data")),
        # the machine floor: used by every other, it uses none of them
        (
            "emg_lightning.runtime",
            tuple(f"emg_lightning.{floor}" for floor in FLOORS if floor != "runtime") + ("lightning", "hydra"),
        ),
        # feature math: pure functions of windows, under the data and the models that use them
        ("emg_lightning.features", ("emg_lightning.data", "emg_lightning.models", "lightning", "hydra", "omegaconf")),
        # run-folder files are read by reports and inference without training code or the DataModule
        (
            "emg_lightning.run_files",
            ("lightning", "hydra", "emg_lightning.data", "emg_lightning.training", "emg_lightning.classifier"),
        ),
        # the CV engine launches emg-train as separate processes: it never trains in its own
        ("emg_lightning.cv", ("emg_lightning.training", "emg_lightning.classifier", "lightning")),
        # motor-unit analysis is signal processing on one record: numpy and scipy, no torch, no data pipeline
        (
            "emg_lightning.muap",
            ("torch", "lightning", "hydra", "omegaconf", "emg_lightning.data", "emg_lightning.models"),
        ),
        # fetching files needs no machine learning
        ("emg_lightning.data.fetch", ("torch", "lightning", "hydra", "omegaconf")),
        # inference uses trained models; it neither trains nor composes Hydra configurations
        ("emg_lightning.inference", ("emg_lightning.training", "emg_lightning.cv", "hydra")),
    ],
)
def test_lower_floors_do_not_reach_up(floor, forbidden):
    for name, imports in MODULES.items():
        if name == floor or name.startswith(floor + "."):
            bad = sorted(i for i in imports if any(i == f or i.startswith(f + ".") for f in forbidden))
            assert bad == [], f"{name} imports {bad}"


CENTRAL = {"__init__", "augmentation", "classifier", "config", "runs", "training"}


def test_only_the_central_modules_lie_at_the_package_top():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert top == CENTRAL, f"move {sorted(top - CENTRAL)} to the floor they belong to"
    assert packages == {*FLOORS, "cli", "benchmarks"}


def test_every_console_script_is_a_command_module():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        module = target.split(":")[0]
        assert module.startswith("emg_lightning.cli."), f"{name} -> {target}: commands live in emg_lightning/cli"
        assert module in MODULES
