"""Data flow: readers (recordings) -> windows -> cache -> splits -> EMGDataModule."""
