"""Third-party messages that tell a user of this framework nothing, silenced in one place: Lightning's litmodels
advert, the `srun` hint on machines with SLURM installed, deprecation notes from inside Lightning, the
"fewer batches than the logging interval" note (metrics are logged once per epoch here), the note that the
classifier's own batch hook is used with a DataModule, and the W&B run
history block at the end of every run. Warnings that concern the user's own settings stay."""

from __future__ import annotations

import logging
import os
import re
import warnings

SILENCED_WARNINGS = (  # regular expressions matched at the start of the message
    re.escape("The `srun` command is available on your system but is not used"),
    re.escape("`isinstance(treespec, LeafSpec)` is deprecated"),
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    ".*does not have many workers",
    # the classifier's augmentation hook is meant to run with any DataModule: Lightning's note says nothing new
    re.escape("You have overridden `on_after_batch_transfer` in `LightningModule`"),
)


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip: For seamless cloud" not in record.getMessage()  # litmodels and litlogger adverts


def quiet_third_party() -> None:
    for message in SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdverts) for f in logger.filters):
            logger.addFilter(_DropAdverts())
    os.environ.setdefault("WANDB_QUIET", "true")  # no run history / summary block after each fold
