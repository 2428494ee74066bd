"""Data anyone can get: the sets ``emg-data fetch`` downloads, each file pinned by its sha256, and where they go.

``sets.py`` names each set (origin, citation, terms, sources, the registry of its files); ``download.py`` fetches and
verifies them. A reader whose set can be fetched reads the fetched copy when ``data.root`` is not set."""

from emg_lightning.data.fetch.sets import FETCHABLE, FetchableSet, data_dir, fetched_root, get_set

__all__ = ["FETCHABLE", "FetchableSet", "data_dir", "fetched_root", "get_set"]
