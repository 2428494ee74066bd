"""emg-train: train one fold, test it on the held-out subject(s), write metrics.json (Hydra entry point).

emg-train                                   # ResEMGNet, synthetic data, LOSO fold 0
emg-train model=alsnet data=emglab data.fold=3 trainer.max_epochs=5
emg-train debug=fdr                         # one batch of each stage: does everything run?
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from emg_lightning.config import CONFIG_DIR
from emg_lightning.cv.callbacks import trial_objective
from emg_lightning.training import run


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run(cfg)
    if cfg.get("optimized_metric"):  # the objective a Hydra sweeper (Optuna) optimises
        return trial_objective(metrics, cfg.optimized_metric, Path(cfg.paths.output_dir))
    return None


def command() -> None:
    """The emg-train command: ``main``, and a Ctrl-C that lands outside a training (a training ends in its own line
    with the resume hint) — while Hydra composes the configuration, between the trials of a search — ends in one
    line too, not a traceback through Hydra."""
    try:
        main()
    except KeyboardInterrupt:
        print(
            "error: emg-train interrupted by Ctrl-C between trainings: run the same command again to go on",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    # run the importable module's command, not __main__'s: submitit pickles the task function by reference then
    from emg_lightning.cli.train import command as importable_command

    importable_command()
