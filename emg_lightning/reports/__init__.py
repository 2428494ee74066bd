"""Reports recomputed from the files a run leaves on disk: the CV summary (and, later, comparisons)."""
