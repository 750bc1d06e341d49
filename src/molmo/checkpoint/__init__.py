"""Checkpoints: released HF-format Molmo directories, our own format, conversion from base models."""

from molmo.checkpoint.io import CheckpointError, load_molmo, save_molmo

__all__ = ["CheckpointError", "load_molmo", "save_molmo"]
