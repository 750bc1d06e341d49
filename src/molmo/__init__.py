"""molmo: the Molmo vision-language model and the PixMo data engine in PyTorch.

Sub-packages: `molmo.preprocess` (images and text to model inputs), `molmo.model` (ViT, connector,
LLM, generation), `molmo.checkpoint` (released HF-format and our own checkpoints), `molmo.data`
(PixMo formatting, readers, generators), `molmo.train`, `molmo.eval`, `molmo.serve`.
Run `molmo --help` for the command line.
"""

__version__ = "0.1.0"
