"""Images and text -> model inputs: crops and masks, the image-token layout, the processor, collation."""

from molmo.preprocess.collate import collate
from molmo.preprocess.config import PreprocessorConfig
from molmo.preprocess.processor import MolmoProcessor, PromptTooLongError, format_prompt

__all__ = ["MolmoProcessor", "PreprocessorConfig", "PromptTooLongError", "collate", "format_prompt"]
