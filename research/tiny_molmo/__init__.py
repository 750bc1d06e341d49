"""The tiny embedded model's research: checks and probes that isolate one half of the grounding problem.

    python -m research.tiny_molmo.decoder_check      # the language model alone, on perfect image tokens
    python -m research.tiny_molmo.grounding_check    # fine-tune a checkpoint on image-dependent counting
    python -m research.tiny_molmo.token_probe        # what a checkpoint's image tokens say, linearly
    python -m research.tiny_molmo.vit_probe          # what a frozen ViT's features say

Their tests run apart from the product suite: `python -m pytest research` (from the repository root).
The findings are in docs/tiny-molmo-research.md.
"""
