"""Synthetic PixMo-style generators (no VLM, no network): points scenes, clocks, documents/charts, captions.
See `base.generate_dataset` and `molmo data generate KIND --n N --out DIR`."""

from molmo.data.generators.base import (GENERATOR_MODULES, GeneratedImage, generate_dataset, generate_one,
                                        get_generator, register)

__all__ = ["GENERATOR_MODULES", "GeneratedImage", "generate_dataset", "generate_one", "get_generator", "register"]
