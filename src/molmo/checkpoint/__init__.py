"""Checkpoints: released HF-format Molmo directories, our own format, conversion from base models.

`from molmo.checkpoint import load_molmo` works as usual; the names load `molmo.checkpoint.io` (and torch) on
first use, so light sub-modules (`info`, `cli`) import without it.
"""

__all__ = ["CheckpointError", "load_molmo", "save_molmo"]


def __getattr__(name: str):
    if name in __all__:
        from molmo.checkpoint import io

        return getattr(io, name)
    raise AttributeError(f"module 'molmo.checkpoint' has no attribute {name!r}")
