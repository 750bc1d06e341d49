"""The Molmo model: configs and presets, ViT, connector, decoder, generation and loss."""

from molmo.model.config import ConnectorConfig, LLMConfig, MolmoConfig, VisionConfig, from_hf_config, preset
from molmo.model.generation import GenerationOutput, generate
from molmo.model.molmo import MolmoModel, MolmoOutput

__all__ = ["ConnectorConfig", "GenerationOutput", "LLMConfig", "MolmoModel", "MolmoConfig", "MolmoOutput",
           "VisionConfig", "from_hf_config", "generate", "preset"]
