"""The files of a run folder, one module per format with its writer and its reader side by side (today:
``predictions.py``). No training code, no DataModule: reports and inference read them without Lightning."""
