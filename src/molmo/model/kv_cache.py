"""A preallocated key/value cache written in place: one [B, kv_heads, capacity, head_dim] buffer pair per
layer, so a decode step copies only its own new keys and values (no per-step `torch.cat` of the whole
history, which is quadratic in the answer length).

Two read modes:
- dynamic (default): attention reads the written prefix `[:, :, :length]`, a view (cheapest on CPU);
- static: attention reads the whole buffer and the caller masks unwritten slots, so every decode step has
  the same shapes (what `torch.compile(mode="reduce-overhead")` and CUDA graphs need).

    cache = KVCache.allocate(cfg.llm, batch=2, capacity=prompt_len + max_new, dtype=torch.bfloat16)
    logits, cache = decoder(x, attention_mask, position_ids, past_key_values=cache, use_cache=True)

A cache made without a capacity (e.g. `use_cache=True` with no cache given) grows by doubling, so old
callers stay correct and the copying stays linear overall.
"""

from __future__ import annotations

import torch

from molmo.model.config import LLMConfig


class KVCache:
    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], static: bool = False):
        self.keys, self.values = keys, values  # per layer [B, kv_heads, capacity, head_dim], k rotated
        self.length = 0  # positions written so far (the same for every row; pads are masked by the caller)
        self.static = static

    @classmethod
    def allocate(cls, cfg: LLMConfig, batch: int, capacity: int, dtype: torch.dtype,
                 device: str | torch.device = "cpu", static: bool = False) -> "KVCache":
        shape = (batch, cfg.kv_heads, capacity, cfg.head_dim)
        keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.layers)]
        values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.layers)]
        return cls(keys, values, static)

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2]

    def key_length(self, new: int) -> int:
        """How many key positions attention sees after writing `new` positions (the mask's width)."""
        return self.capacity if self.static else self.length + new

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's k / v [B, kv_heads, t, hd] at `length` and return what attention reads. The
        length advances once per forward (`advance`), after the last layer has written."""
        start, t = self.length, k.shape[2]
        if start + t > self.capacity:
            if self.static:
                raise ValueError(f"static KV cache of {self.capacity} positions cannot take {start + t}")
            self._grow(max(start + t, 2 * self.capacity))
        self.keys[layer][:, :, start:start + t].copy_(k)
        self.values[layer][:, :, start:start + t].copy_(v)
        if self.static:
            return self.keys[layer], self.values[layer]
        return self.keys[layer][:, :, :start + t], self.values[layer][:, :, :start + t]

    def advance(self, t: int) -> None:
        self.length += t

    def _grow(self, capacity: int) -> None:
        def grown(buf: torch.Tensor) -> torch.Tensor:
            new = buf.new_zeros(*buf.shape[:2], capacity, buf.shape[3])
            new[:, :, :self.length] = buf[:, :, :self.length]
            return new

        self.keys = [grown(k) for k in self.keys]
        self.values = [grown(v) for v in self.values]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(k, v) written so far for one layer (views)."""
        return self.keys[layer][:, :, :self.length], self.values[layer][:, :, :self.length]
