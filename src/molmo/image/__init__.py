"""Image input handling (loading with clear errors)."""

from molmo.image.loading import ImageError, load_image

__all__ = ["ImageError", "load_image"]
