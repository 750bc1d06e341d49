"""Images and text -> model inputs: crops and masks, the image-token layout, the processor, collation."""

from molmo.preprocess.collate import collate
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.processor import MolmoProcessor

__all__ = ["MolmoProcessor", "PreprocessorConfig", "collate"]
