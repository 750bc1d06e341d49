"""Quantized inference for the decoder's linear layers (the weights decoding streams every token):

- "int8" on the CPU: torch's dynamic int8 quantization (fbgemm/x86 int8 GEMMs; int8 weights per output
  channel, activations quantized per call). Chosen over torchao's int8 weight-only layout, which in eager
  mode on the CPU dequantizes per call and measured ~5x slower than fp32 here. Needs an fp32 model (the
  quantized layers take and return fp32).
- "int8" on CUDA: torchao's `Int8WeightOnlyConfig` (pip install torchao); untested in this project's CI,
  which has no GPU.
- "nf4" on CUDA: bitsandbytes 4-bit `Linear4bit` (pip install bitsandbytes); untested here (no GPU).

    model, _ = load_molmo(path, quantize="int8")       # or quantize_decoder(model, "int8")
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("int8", "nf4")


def _decoder_linears(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in model.llm.named_modules() if isinstance(m, nn.Linear)}


def quantize_decoder(model: nn.Module, mode: str) -> nn.Module:
    """Replace the decoder's nn.Linear layers in place; the ViT and connector stay in their dtype."""
    if mode not in MODES:
        raise ValueError(f"unknown quantization {mode!r}; choose from {', '.join(MODES)}")
    device = model.llm.embed.embedding.device
    if device.type == "cpu":
        if mode != "int8":
            raise ValueError(f"quantize={mode!r} needs a CUDA GPU (bitsandbytes); on the CPU use 'int8'")
        if model.llm.embed.embedding.dtype != torch.float32:
            raise ValueError("int8 on the CPU quantizes an fp32 model (its int8 layers compute in fp32); "
                             "load with dtype=float32")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        quantize_dynamic(model.llm, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
        return model
    if mode == "int8":
        try:
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
        except ImportError:
            raise ValueError("quantize='int8' on a GPU needs torchao (pip install torchao)") from None
        quantize_(model.llm, Int8WeightOnlyConfig())
        return model
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise ValueError("quantize='nf4' needs bitsandbytes (pip install bitsandbytes)") from None
    for name, linear in _decoder_linears(model).items():
        parent = model.llm.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model.llm
        q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=linear.bias is not None,
                              compute_dtype=model.llm.embed.embedding.dtype, quant_type="nf4")
        q.weight = bnb.nn.Params4bit(linear.weight.data.cpu(), requires_grad=False, quant_type="nf4")
        if linear.bias is not None:
            q.bias = nn.Parameter(linear.bias.data, requires_grad=False)
        setattr(parent, name.rsplit(".", 1)[-1], q.to(device))
    return model


def linear_weight_bytes(model: nn.Module) -> int:
    """Bytes held by the model's parameters and packed quantized weights (for memory reports)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    for m in model.modules():
        packed = getattr(m, "_packed_params", None)
        if packed is not None:
            weight, bias = packed._weight_bias()
            total += weight.numel() * weight.element_size()
            if bias is not None:
                total += bias.numel() * bias.element_size()
    return total
