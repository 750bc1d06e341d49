"""The connector between ViT and LLM: multi-layer feature concatenation, padding embeddings (with the
released off-by-one mask quirk handled upstream in the pre-processor), 2x2 attention pooling with a mean
query, and the SwiGLU projector into the LLM width.

    backbone = VisionBackbone(cfg)  # cfg: MolmoConfig
    feats = backbone(images, image_masks)  # [B, N, tokens_per_crop, d_model]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from molmo.model.config import MolmoConfig, PaddingEmbed, Pooling
from molmo.model.vit import VisionTransformer


class AttentionPool(nn.Module):
    """Pools each window of k features into one: query = window mean (attention-meanq) or first member."""

    def __init__(self, in_dim: int, heads: int, head_dim: int, out_dim: int, mean_query: bool):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim, self.mean_query = heads, head_dim, mean_query
        self.wq = nn.Linear(in_dim, inner)
        self.wk = nn.Linear(in_dim, inner)
        self.wv = nn.Linear(in_dim, inner)
        self.wo = nn.Linear(inner, out_dim)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """windows [M, k, in_dim] -> [M, out_dim]."""
        m, k, _ = windows.shape
        query = windows.mean(dim=1, keepdim=True) if self.mean_query else windows[:, :1]
        q = self.wq(query).view(m, 1, self.heads, self.head_dim).transpose(1, 2)
        kk = self.wk(windows).view(m, k, self.heads, self.head_dim).transpose(1, 2)
        v = self.wv(windows).view(m, k, self.heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q.float(), kk.float(), v.float()).to(v.dtype)
        return self.wo(out.transpose(1, 2).reshape(m, -1))


class SwiGLUProjector(nn.Module):
    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.w1 = nn.Linear(in_dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, out_dim, bias=False)
        self.w3 = nn.Linear(in_dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class VisionBackbone(nn.Module):
    def __init__(self, cfg: MolmoConfig):
        super().__init__()
        v, c = cfg.vision, cfg.connector
        self.cfg = cfg
        self.vit = VisionTransformer(v)
        feat_dim = v.width * len(c.vit_layers)
        self.pooling = (
            AttentionPool(feat_dim, v.heads, v.head_dim, v.width, mean_query=c.pooling == Pooling.ATTENTION_MEANQ)
            if c.pooling != Pooling.NONE else None
        )
        pooled_dim = v.width if self.pooling is not None else feat_dim
        self.projector = SwiGLUProjector(pooled_dim, cfg.llm.ffn_hidden, cfg.llm.d_model)
        n_pad = {PaddingEmbed.PAD_AND_PARTIAL_PAD: 2, PaddingEmbed.PAD_EMBED: 1, PaddingEmbed.REGRESS: 1,
                 None: 0}[c.padding_embed]
        self.pad_embed = nn.Parameter(torch.zeros(n_pad, feat_dim)) if n_pad else None

    def tokens_per_crop(self) -> tuple[int, int]:
        gh, gw = self.cfg.vision.grid
        c = self.cfg.connector
        if self.pooling is None:
            return gh, gw
        return -(-gh // c.pool_h), -(-gw // c.pool_w)

    def vit_features(self, crops: torch.Tensor) -> torch.Tensor:
        """crops [M, P, patch_dim] -> concatenated selected layers without the class token [M, P, feat]."""
        return self.select_layers(self.vit(crops))

    def select_layers(self, hidden: list[torch.Tensor]) -> torch.Tensor:
        """The ViT's per-layer outputs -> the connector's input: its layers concatenated, class token dropped."""
        feats = torch.cat([hidden[i] for i in self.cfg.connector.vit_layers], dim=-1)
        return feats[:, 1:] if self.vit.class_token_present else feats

    def forward(self, images: torch.Tensor, image_masks: torch.Tensor | None) -> torch.Tensor:
        """images [B, N, P, patch_dim] (padding crops all -1), image_masks [B, N, P] -> [B, N, T, d_model]."""
        b, n, p, _ = images.shape
        crops = images.reshape(b * n, p, -1)
        feats = self.vit_features(crops)
        # A crop whose pixels are all -1 is batch padding: zero its features.
        valid = ~(crops == -1).all(dim=(1, 2))
        feats = feats * valid[:, None, None].to(feats.dtype)
        feats = feats.view(b, n, p, -1)

        kind = self.cfg.connector.padding_embed
        if self.pad_embed is not None and image_masks is not None:
            m = image_masks.to(feats.dtype)
            if kind == PaddingEmbed.PAD_AND_PARTIAL_PAD:
                all_pad = (m == 0).to(feats.dtype)[..., None]
                partial = ((m < 1) & (m != 0)).to(feats.dtype)[..., None]
                feats = feats + all_pad * self.pad_embed[0].to(feats.dtype) + partial * self.pad_embed[1].to(feats.dtype)
            elif kind == PaddingEmbed.PAD_EMBED:
                feats = feats + (m == 0).to(feats.dtype)[..., None] * self.pad_embed[0].to(feats.dtype)
            elif kind == PaddingEmbed.REGRESS:
                feats = feats + (1 - m.clamp(0, 1))[..., None] * self.pad_embed[0].to(feats.dtype)

        gh, gw = self.cfg.vision.grid
        feats = feats.view(b * n, gh, gw, -1)
        if self.pooling is not None:
            c = self.cfg.connector
            ph, pw = c.pool_h, c.pool_w
            pad_h, pad_w = (-gh) % ph, (-gw) % pw
            if pad_h or pad_w:  # odd grids (SigLIP 27x27) are zero-padded at the bottom/right
                feats = F.pad(feats, (0, 0, 0, pad_w, 0, pad_h))
            th, tw = (gh + pad_h) // ph, (gw + pad_w) // pw
            windows = feats.view(b * n, th, ph, tw, pw, -1).permute(0, 1, 3, 2, 4, 5)
            windows = windows.reshape(b * n * th * tw, ph * pw, -1)
            feats = self.pooling(windows).view(b, n, th * tw, -1)
        else:
            feats = feats.view(b, n, gh * gw, -1)
        out = self.projector(feats)
        scale = self.cfg.connector.image_scale
        return out * scale if scale != 1.0 else out
