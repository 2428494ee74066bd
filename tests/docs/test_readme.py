"""The README's and the docs' commands still work as written: every emg-train / emg-cv / emg-data / make command in
their code blocks composes (each group option and key exists), and those that need no real data run (one batch
each)."""

from __future__ import annotations

import shlex

import pytest
from hydra.core.global_hydra import GlobalHydra

from emg_lightning.config import compose_config
from emg_lightning.data.readers import SOURCES
from emg_lightning.training import train

from conftest import REPO, compose_train

COMMANDS = ("emg-train", "emg-cv", "emg-data", "emg-eval")
CV_OWN_KEYS = ("seeds=", "cv_dir=")


DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def readme_commands() -> list[tuple[str, list[str]]]:
    """(command, Hydra overrides) of every command line in the fenced code blocks of the README and the docs."""
    blocks, block, language = [], None, ""
    lines = [line for document in DOCUMENTS for line in document.read_text().splitlines()]
    for line in lines:
        if line.startswith("```"):
            if block is None:
                block, language = [], line[3:].strip()
            else:
                if language in ("", "bash", "sh"):
                    blocks.append("\n".join(block))
                block = None
        elif block is not None:
            block.append(line)
    found = []
    for text in blocks:
        for line in text.replace("\\\n", " ").splitlines():
            words = shlex.split(line.strip().removeprefix("$ "), comments=True)
            if words[:1] == ["make"] and len(words) > 1 and words[1] in ("train", "data"):
                args = next((w[5:] for w in words if w.startswith("ARGS=")), "")
                found.append((f"emg-{words[1]}", shlex.split(args)))
                continue
            words = [w.removeprefix(".venv/bin/") for w in words]
            if words[:3] == ["python", "-m", "emg_lightning.cli.train"]:
                words = ["emg-train", *words[3:]]
            if words and words[0] in COMMANDS:
                found.append((words[0], words[1:]))
    return found


def overrides_of(command: str, args: list[str]) -> list[str]:
    """What reaches Hydra's composition: emg-cv's own keys and emg-data's flags removed, sweeps at their first value."""
    kept, flag_value = [], False
    for arg in args:
        if flag_value:  # the value of a flag such as emg-data's --json FILE
            flag_value = False
            continue
        if arg.startswith("--") and "=" not in arg:
            flag_value = True
            continue
        if arg == "-m" or (command == "emg-cv" and arg.startswith(CV_OWN_KEYS)):
            continue
        key, _, value = arg.partition("=")
        if "," in value and not value.startswith(("[", "{")) and not key.startswith("hydra."):
            value = value.split(",")[0]  # a -m sweep: one of its jobs
        kept.append(f"{key}={value}" if _ else arg)
    return kept


README_COMMANDS = readme_commands()


HYDRA_COMMANDS = [(c, a) for c, a in README_COMMANDS if c != "emg-eval" and a[:1] != ["fetch"]]
FETCH_COMMANDS = [a[1:] for c, a in README_COMMANDS if c == "emg-data" and a[:1] == ["fetch"]]
EVAL_COMMANDS = [a for c, a in README_COMMANDS if c == "emg-eval"]


def test_the_readme_has_commands_to_check():
    assert len(README_COMMANDS) >= 15
    assert {c for c, _ in README_COMMANDS} == set(COMMANDS)


@pytest.mark.parametrize("args", EVAL_COMMANDS, ids=[" ".join(a)[:80] for a in EVAL_COMMANDS])
def test_documented_evaluations_parse(args):
    """emg-eval's documented command lines: its training keys and flags as its own parser reads them."""
    from emg_lightning.cli.evaluate import argument_parser, take_data_keys

    rest, labels = take_data_keys(args)
    parsed = argument_parser().parse_args(rest)
    assert parsed.out and parsed.inputs and set(labels) <= {"pattern", "manifest", "label_map"}


def test_documented_fetches_parse_and_name_a_set():
    from emg_lightning.cli.data import fetch_argument_parser
    from emg_lightning.data.fetch import FETCHABLE

    assert len(FETCH_COMMANDS) >= 3
    for args in FETCH_COMMANDS:
        parsed = fetch_argument_parser().parse_args(args)
        assert parsed.list or parsed.name in FETCHABLE, args


@pytest.mark.parametrize("command, args", HYDRA_COMMANDS, ids=[" ".join([c, *a])[:80] for c, a in HYDRA_COMMANDS])
def test_readme_command_composes(command, args):
    cfg = compose_config(overrides_of(command, args))
    assert cfg.data.source in SOURCES


def needs_nothing_from_outside(args: list[str]) -> bool:
    text = " ".join(args)
    return not any(
        word in text
        for word in (
            "data=emglab",
            "data=wfdb",
            "data=algiers",
            "data=pooled",
            "/path/to",
            "experiment=",
            "launcher=slurm",
            "hparams_search",
            "trainer=gpu",
            "trainer=ddp",
            "launcher=",
        )
    )


RUNNABLE = [(c, a) for c, a in README_COMMANDS if c == "emg-train" and needs_nothing_from_outside(a)]
ONE_BATCH = [
    "data.synthetic.subjects_per_class={normal:3,als:3,myopathy:3}",  # 9 subjects: the README's data.fold=7 exists
    "data.synthetic.records_per_subject=[1,1]",
    "data.synthetic.duration_s=2.0",
    "logger=none",
    "++trainer.fast_dev_run=true",
    "print_config=false",
]


@pytest.mark.slow
@pytest.mark.parametrize("args", [a for _, a in RUNNABLE], ids=[" ".join(a)[:80] for _, a in RUNNABLE])
def test_readme_training_command_runs(args, tmp_path):
    """In-process, as emg-train runs it (the command line itself is exercised by the other end-to-end tests)."""
    try:
        cfg = compose_train([*overrides_of("emg-train", args), *ONE_BATCH], tmp_path)
        metrics = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    assert (tmp_path / "metrics.json").is_file() and metrics["test_windows"] > 0


# the other commands: argparse, not Hydra; their documented flags must be theirs
ARGPARSE_COMMANDS = {
    "emg-predict": "emg_lightning.cli.predict",
    "emg-compare": "emg_lightning.cli.compare",
    "emg-ensemble": "emg_lightning.cli.ensemble",
    "emg-export": "emg_lightning.cli.export",
    "emg-explain": "emg_lightning.cli.explain",
    "emg-cv-report": "emg_lightning.cli.report",
    "emg-bench": "emg_lightning.cli.bench",
    "emg-muap": "emg_lightning.cli.muap",
}


def documented_flags() -> list[tuple[str, str]]:
    """(command, --flag) of every flag used with an argparse command in the README's and docs' code blocks."""
    found = set()
    for document in DOCUMENTS:
        fence = False
        for line in document.read_text().splitlines():
            if line.startswith("```"):
                fence = not fence
                continue
            words = line.strip().removeprefix("$ ").split()
            if fence and words and words[0].removeprefix(".venv/bin/") in ARGPARSE_COMMANDS:
                command = words[0].removeprefix(".venv/bin/")
                found |= {(command, w.split("=")[0]) for w in words[1:] if w.startswith("--")}
    return sorted(found)


DOCUMENTED_FLAGS = documented_flags()


def test_the_docs_use_the_argparse_commands():
    assert {c for c, _ in DOCUMENTED_FLAGS} >= {"emg-compare", "emg-ensemble", "emg-predict", "emg-explain", "emg-muap"}


@pytest.mark.parametrize("command, flag", DOCUMENTED_FLAGS, ids=[f"{c} {f}" for c, f in DOCUMENTED_FLAGS])
def test_documented_flags_exist(command, flag, capsys):
    import importlib

    main = importlib.import_module(ARGPARSE_COMMANDS[command]).main
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert flag in capsys.readouterr().out.replace("\n", " ").split(), f"{command} has no {flag}"
