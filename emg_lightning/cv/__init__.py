"""The cross-validation engine under ``emg-cv``: the plan (folds, seeds, the folder named by its settings), the
sweep of emg-train jobs through Hydra's launchers, the nested search, Hydra callbacks (progress, search guard and
results), and the settings' identity hash. The report itself is computed from files in ``reports/``."""
