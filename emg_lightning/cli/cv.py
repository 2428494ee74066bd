"""emg-cv: every fold (and seed) of a configuration as one Hydra multirun, then the CV report.

    emg-cv split=loso                                     # all LOSO folds, seed 0
    emg-cv split=group_kfold split.k=5 seeds=[0,1,2]       # 5 folds x 3 seeds
    emg-cv model=alsnet data=emglab cv_dir=logs/cv/alsnet  # choose the folder

Takes the same overrides as emg-train. The default folder, ``logs/cv/<experiment_name>-<split>-<hash>``, names the
configuration (8 hex digits of its settings, runtime keys excluded), so variants never share a folder; a cv_dir
holding folds of other settings is refused before any job starts. Folds land in ``<cv_dir>/seed_<s>/fold_<NN>``;
running the same command again skips finished folds and resumes an interrupted one from its ``last.ckpt``; two
processes on one folder never train the same fold at once (a lock per fold) and share the folds: each leaves the
other's to it and waits for them at the end. A failing fold is recorded
(``failed.json``) and the others go on; a summary with jobs missing is named ``*.partial.*`` and emg-cv exits 1.
Hydra launcher overrides (``hydra/launcher=...``) apply unchanged. With ``hparams_search=...`` the CV is nested (a
search per outer fold on its training subjects), ``nested_jobs=N`` outer folds at a time.
"""

from __future__ import annotations

import sys

from emg_lightning.config import USER_ERRORS
from emg_lightning.cv.nested import run_nested
from emg_lightning.cv.plan import prepare, take_setting
from emg_lightning.cv.sweep import SweepFailed, run_sweep, summarise_cv
from emg_lightning.reports.cv_summary import markdown
from emg_lightning.runtime.console import one_line_errors


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    cv_dir_text, overrides = take_setting(argv, "cv_dir")
    nested_jobs_text, overrides = take_setting(overrides, "nested_jobs")
    # emg-cv's jobs handle SIGTERM themselves (checkpoint, requeue): it keeps the default there
    with one_line_errors(USER_ERRORS, interrupted="emg-cv interrupted by Ctrl-C before any job started", sigterm=False):
        cv = prepare(cv_dir_text, nested_jobs_text, overrides)
    jobs = cv.n_folds * len(cv.seeds)
    print(f"[emg-cv] {cv.name}: {cv.n_folds} folds x {len(cv.seeds)} seed(s) = {jobs} jobs in {cv.cv_dir}")
    # finished folds are kept, an interrupted one resumes from its last.ckpt
    again = f"emg-cv interrupted by Ctrl-C: run the same command again to finish {cv.cv_dir}"
    with one_line_errors(USER_ERRORS, interrupted=again, sigterm=False):
        try:
            if cv.searched:
                print(
                    f"[emg-cv] nested search over {', '.join(cv.searched)}: each outer fold searches on its own "
                    f"training subjects, then tests its winner"
                )
                run_nested(cv.overrides, cv.searched, cv.n_folds, cv.seeds, cv.cv_dir, cv.nested_jobs, cv.ranges)
            else:
                run_sweep(cv.overrides, cv.n_folds, cv.seeds, cv.cv_dir)
        except SweepFailed as exc:  # the sweep's own exit code, not a settings error's
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(exc.returncode)
        summary = summarise_cv(cv.cfg, cv.cv_dir, cv.name)
    print(markdown(summary))
    print(f"[emg-cv] written in {cv.cv_dir}: " + ", ".join(summary["outputs"]))
    if summary["complete"] is False:
        print(
            f"[emg-cv] PARTIAL: {len(summary['missing'])} job(s) have no result (see failed.json): run the same "
            f"command again to retry them",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
