"""The Molmo model: vision backbone + connector produce one feature per pooled image token, which is ADDED
to the embedding of the matching `<im_patch>` token (positions in `image_input_idx`), then the decoder runs
over `[BOS][image tokens][text]` with causal attention.

    model = MolmoModel(molmo_7b_d())   # the network; the user-facing wrapper is molmo.api.Molmo
    out = model(input_ids, images=..., image_masks=..., image_input_idx=...)  # out.logits [B, T, E]
    out = model(input_ids, ..., logits_to_keep=1)   # inference: the LM head on the last position only
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from molmo.model.config import MolmoConfig
from molmo.model.connector import VisionBackbone
from molmo.model.kv_cache import KVCache
from molmo.model.llm import Decoder


@dataclass
class MolmoOutput:
    logits: torch.Tensor
    past_key_values: KVCache | None = None
    image_features: torch.Tensor | None = None


def default_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Pads take the last valid position; with right padding this is 0..T-1 on real tokens."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class MolmoModel(nn.Module):
    def __init__(self, config: MolmoConfig):
        super().__init__()
        self.config = config
        self.vision = VisionBackbone(config)
        self.llm = Decoder(config.llm)

    def encode_images(self, images: torch.Tensor, image_masks: torch.Tensor | None) -> torch.Tensor:
        return self.vision(images.to(self.llm.embed.embedding.dtype), image_masks)

    def embed_inputs(self, input_ids, images=None, image_masks=None, image_input_idx=None):
        """Token embeddings with the image features added at `image_input_idx` (-100 / -1 skipped)."""
        x = self.llm.embed(input_ids)
        features = None
        if images is not None and image_input_idx is not None:
            features = self.encode_images(images, image_masks)
            b, n, t, d = features.shape
            idx = image_input_idx.reshape(b, n * t).long()
            valid = idx >= 0
            batch = torch.arange(b, device=idx.device)[:, None].expand_as(idx)
            x = x.index_put((batch[valid], idx[valid]), features.reshape(b, n * t, d)[valid].to(x.dtype),
                            accumulate=True)
        return x, features

    def forward(
        self,
        input_ids: torch.Tensor,
        images: torch.Tensor | None = None,
        image_masks: torch.Tensor | None = None,
        image_input_idx: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        subsegment_ids: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        response_mask: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
    ) -> MolmoOutput:
        """logits_to_keep: 0 = logits at every position (training, scoring), k = the last k positions, a
        LongTensor [B] = one position per row (the last real token of right-padded prompts)."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
        if past_key_values is not None and subsegment_ids is not None:
            raise ValueError("sub-segment (multi-annotation) attention cannot be combined with a KV cache")
        if attention_mask is None:
            attention_mask = input_ids != -1
            if past_key_values is not None:
                b, device = input_ids.shape[0], input_ids.device
                past = torch.ones(b, past_key_values.length, dtype=torch.bool, device=device)
                attention_mask = torch.cat([past, attention_mask], dim=1)
                if past_key_values.static:  # unwritten slots of the buffer are masked
                    free = past_key_values.capacity - attention_mask.shape[1]
                    attention_mask = torch.cat([attention_mask, attention_mask.new_zeros(b, free)], dim=1)
        if position_ids is None:
            end = attention_mask.shape[1] if past_key_values is None else past_key_values.length + input_ids.shape[1]
            position_ids = default_position_ids(attention_mask[:, :end])[:, -input_ids.shape[1]:]
        x, features = self.embed_inputs(input_ids, images, image_masks, image_input_idx)
        logits, cache = self.llm(x, attention_mask, position_ids, subsegment_ids, past_key_values, use_cache,
                                 response_mask, logits_to_keep)
        return MolmoOutput(logits=logits, past_key_values=cache, image_features=features)
