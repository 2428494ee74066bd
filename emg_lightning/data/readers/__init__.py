"""Readers turn recordings on disk (or generated) into ``Recording`` objects. No torch, no Lightning."""
