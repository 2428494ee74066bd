"""Losses: soft-target cross-entropy and the label-smoothing rules that make the targets."""
