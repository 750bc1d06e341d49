"""LoRA adapter settings, apart from `molmo.checkpoint.lora` (which applies them with torch) so that training
configs and `--help` can name them without loading torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoraConfig:
    """Rank 0 means no adapters; `alpha / rank` scales their update."""
    rank: int = 0  # 0 = off
    alpha: float = 16.0
    dropout: float = 0.0
    # Regular expressions over module names (`molmo.model.MolmoModel`): the LLM's attention and MLP projections.
    targets: tuple[str, ...] = (r"^llm\.blocks\.\d+\..*(att_proj|attn_out|ff_proj|ff_out)$",)
    base_model: str | None = None  # written as the adapter's base_model_name_or_path
