"""Model configuration: small frozen dataclasses for the vision backbone, connector, LLM and whole Molmo,
named presets for the released checkpoints, and readers for a released HF `config.json`.

    from molmo.model.config import molmo_7b_d, from_hf_config
    cfg = molmo_7b_d()
    cfg = from_hf_config(json.load(open("Molmo-7B-D-0924/config.json")))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from molmo.choices import Choice, parse_choices
from molmo.text.special_tokens import ImageTokenIds


class VisionKind(Choice):
    """Which ViT family: the released checkpoints' backbones differ in these details (set by from_hf_config)."""
    CLIP = "clip"  # OpenAI CLIP: class token, pre-LN, no patch bias
    SIGLIP = "siglip"  # no class token, patch bias
    DINO = "dino"  # DINOv2: class token, patch bias, layer scale


class Activation(Choice):
    QUICK_GELU = "quick_gelu"  # x * sigmoid(1.702 x), OpenAI CLIP
    GELU_TANH = "gelu_tanh"  # the tanh approximation, SigLIP
    GELU = "gelu"


class Pooling(Choice):
    """How each 2x2 window of patch features becomes one image token."""
    ATTENTION_MEANQ = "attention-meanq"  # attention with the window's mean as the query (the released models)
    ATTENTION = "attention"  # attention with a learned query
    NONE = "none"  # no pooling: one token per patch


class Projector(Choice):
    MLP = "mlp"  # SwiGLU, hidden = the LLM's SwiGLU width


class PaddingEmbed(Choice):
    """Learned embeddings added to patch features by how much of the patch is padding (None: none)."""
    PAD_AND_PARTIAL_PAD = "pad_and_partial_pad"  # one for all-padding patches, one for partly padded ones
    PAD_EMBED = "pad_embed"  # one, for all-padding patches
    REGRESS = "regress"  # one, scaled by the patch's padding fraction


@dataclass(frozen=True)
class VisionConfig:
    """A CLIP / SigLIP / DINOv2-style ViT. Defaults = OpenAI CLIP ViT-L/14-336 truncated to 23 layers."""

    kind: VisionKind = VisionKind.CLIP
    image_size: tuple[int, int] = (336, 336)  # (height, width) of one crop, the ViT's input
    patch_size: int = 14
    width: int = 1024
    layers: int = 23
    heads: int = 16
    head_dim: int = 64
    mlp_dim: int = 4096
    activation: Activation = Activation.QUICK_GELU
    norm_eps: float = 1e-5
    class_token: bool = True
    pre_ln: bool = True
    patch_bias: bool = False
    layer_scale: bool = False

    def __post_init__(self) -> None:
        parse_choices(self, kind=VisionKind, activation=Activation)

    @property
    def grid(self) -> tuple[int, int]:
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def num_positions(self) -> int:
        return self.num_patches + int(self.class_token)

    @property
    def patch_dim(self) -> int:
        return 3 * self.patch_size * self.patch_size


@dataclass(frozen=True)
class ConnectorConfig:
    """Multi-layer ViT features -> padding embeddings -> 2x2 attention pooling -> SwiGLU projector."""

    vit_layers: tuple[int, ...] = (-2, -9)
    pooling: Pooling = Pooling.ATTENTION_MEANQ
    pool_h: int = 2
    pool_w: int = 2
    projector: Projector = Projector.MLP
    padding_embed: PaddingEmbed | None = PaddingEmbed.PAD_AND_PARTIAL_PAD
    image_scale: float = 1.0  # multiplies the projector output (1.0 for released models)

    def __post_init__(self) -> None:
        parse_choices(self, pooling=Pooling, projector=Projector, padding_embed=PaddingEmbed)


@dataclass(frozen=True)
class LLMConfig:
    """One decoder covering Qwen2 (qkv bias, GQA), OLMo-7B-1024 (qk-norm, norm_after) and OLMoE (MoE)."""

    d_model: int = 3584
    layers: int = 28
    heads: int = 28
    kv_heads: int = 4
    head_dim: int = 128
    ffn_hidden: int = 18944  # SwiGLU inner width (released `intermediate_size` / 2), or per-expert width
    qkv_bias: bool = True
    qk_norm: bool = False
    norm_after: bool = False
    clip_qkv: float | None = None
    rope_theta: float = 1e6
    norm_eps: float = 1e-6
    vocab_size: int = 152064
    embedding_size: int = 152064
    additional_vocab_size: int = 128
    max_position_embeddings: int = 4096
    num_experts: int = 0  # 0 = dense SwiGLU FFN
    experts_top_k: int = 0
    norm_topk_prob: bool = False
    residual_dropout: float = 0.0
    response_residual_dropout: float = 0.0
    attention_dropout: float = 0.0  # on attention probabilities, training only (released OLMoE/MolmoE: 0.1)


@dataclass(frozen=True)
class MolmoConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    special_token_ids: dict[str, int] | None = None  # name -> id; None = the rule of arch-spec §4.5
    eos_token_id: int | None = None

    def image_token_ids(self) -> dict[str, int]:
        if self.special_token_ids is not None:
            return dict(self.special_token_ids)
        # Default rule: the specials follow the (padded) vocabulary, i.e. the first new embedding rows.
        return ImageTokenIds.after_vocabulary(self.llm.embedding_size).to_mapping()

    def replace(self, **kw: Any) -> "MolmoConfig":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "molmo", **dataclasses.asdict(self)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "MolmoConfig":
        vision = dict(d["vision"])
        vision["image_size"] = tuple(vision["image_size"])
        connector = dict(d["connector"])
        connector["vit_layers"] = tuple(connector["vit_layers"])
        return MolmoConfig(
            vision=VisionConfig(**vision),
            connector=ConnectorConfig(**connector),
            llm=LLMConfig(**d["llm"]),
            special_token_ids=d.get("special_token_ids"),
            eos_token_id=d.get("eos_token_id"),
        )


# ---------------------------------------------------------------- presets (arch-spec §0)


def molmo_7b_d() -> MolmoConfig:
    """Molmo-7B-D-0924: CLIP ViT-L/14-336 + Qwen2-7B."""
    return MolmoConfig(llm=LLMConfig(), eos_token_id=151643)


def molmo_72b() -> MolmoConfig:
    """Molmo-72B-0924: CLIP ViT-L/14-336 + Qwen2-72B."""
    return MolmoConfig(
        llm=LLMConfig(d_model=8192, layers=80, heads=64, kv_heads=8, ffn_hidden=29568, norm_eps=1e-5),
        eos_token_id=151643,
    )


def molmo_7b_o() -> MolmoConfig:
    """Molmo-7B-O-0924: CLIP ViT-L/14-336 + OLMo-7B-1024 (qk-norm, norm_after, MHA)."""
    llm = LLMConfig(
        d_model=4096, layers=32, heads=32, kv_heads=32, ffn_hidden=11008, qkv_bias=False, qk_norm=True,
        norm_after=True, rope_theta=5e5, norm_eps=1e-6, vocab_size=100278, embedding_size=100352,
    )
    return MolmoConfig(llm=llm, eos_token_id=100257)


def molmoe_1b() -> MolmoConfig:
    """MolmoE-1B-0924: CLIP ViT-L/14-336 + OLMoE-1B-7B (64 experts, top-8). [UNCERTAIN: arch-spec §4.3]"""
    llm = LLMConfig(
        d_model=2048, layers=16, heads=16, kv_heads=16, ffn_hidden=1024, qkv_bias=False, qk_norm=True,
        rope_theta=1e4, norm_eps=1e-5, vocab_size=50304, embedding_size=50304, num_experts=64,
        experts_top_k=8,
    )
    return MolmoConfig(llm=llm, eos_token_id=50279)


def tiny_qwen2() -> MolmoConfig:
    """A Qwen2-style tiny model with 112-px crops (the shape of the conformance fixture tiny_qwen2)."""
    vision = VisionConfig(image_size=(112, 112), width=64, layers=10, heads=4, head_dim=16, mlp_dim=128)
    llm = LLMConfig(d_model=64, layers=3, heads=4, kv_heads=2, head_dim=16, ffn_hidden=88, vocab_size=512,
                    embedding_size=512)
    return MolmoConfig(vision=vision, llm=llm, eos_token_id=511)


def tiny_olmo() -> MolmoConfig:
    """An OLMo-style tiny model (qk-norm, norm_after) with 336-px crops (fixture tiny_olmo)."""
    vision = VisionConfig(width=48, layers=10, heads=3, head_dim=16, mlp_dim=96)
    llm = LLMConfig(d_model=80, layers=2, heads=5, kv_heads=5, head_dim=16, ffn_hidden=96, qkv_bias=False,
                    qk_norm=True, norm_after=True, rope_theta=5e5, vocab_size=350, embedding_size=384)
    return MolmoConfig(vision=vision, llm=llm, eos_token_id=349)


def tiny_moe() -> MolmoConfig:
    """An OLMoE-style tiny model (8 experts, top-2) for tests."""
    vision = VisionConfig(image_size=(112, 112), width=32, layers=3, heads=2, head_dim=16, mlp_dim=64)
    llm = LLMConfig(d_model=64, layers=2, heads=4, kv_heads=4, head_dim=16, ffn_hidden=32, qkv_bias=False,
                    qk_norm=True, rope_theta=1e4, norm_eps=1e-5, vocab_size=300, embedding_size=320,
                    num_experts=8, experts_top_k=2)
    return MolmoConfig(vision=vision, connector=ConnectorConfig(vit_layers=(-1, -2)), llm=llm, eos_token_id=299)


def tiny_molmo() -> MolmoConfig:
    """The shipped embedded default model, v3 (~12M parameters, stored in bf16): 112-px crops of 14-px patches,
    a 6-layer ViT of width 192 and a 6-layer Qwen2-style decoder of width 320 with a 1024-token vocabulary whose
    attention norms queries and keys (OLMo's qk-norm: trained from scratch on symbolic image tokens, a decoder
    with the norms learns to count only the objects of the colour a question names in a few hundred steps;
    without them it stalls at about half, docs/tiny-molmo-research.md)."""
    vision = VisionConfig(image_size=(112, 112), width=192, layers=6, heads=3, head_dim=64, mlp_dim=768)
    llm = LLMConfig(d_model=320, layers=6, heads=5, kv_heads=5, head_dim=64, ffn_hidden=864, rope_theta=1e4,
                    qk_norm=True, vocab_size=1024, embedding_size=1024, max_position_embeddings=1024)
    return MolmoConfig(vision=vision, connector=ConnectorConfig(vit_layers=(-1, -3)), llm=llm)


def tiny_molmo_v2() -> MolmoConfig:
    """The embedded model shipped before v3: `tiny_molmo` without the query/key norms."""
    cfg = tiny_molmo()
    return dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, qk_norm=False))


PRESETS = {
    "tiny-molmo": tiny_molmo,
    "tiny-molmo-v2": tiny_molmo_v2,
    "tiny-molmo-qk": tiny_molmo,  # the name the v3 candidate was trained under (its runs' configs say it)
    "molmo-7b-d": molmo_7b_d,
    "molmo-7b-o": molmo_7b_o,
    "molmo-72b": molmo_72b,
    "molmoe-1b": molmoe_1b,
    "tiny-qwen2": tiny_qwen2,
    "tiny-olmo": tiny_olmo,
    "tiny-moe": tiny_moe,
}


def preset(name: str) -> MolmoConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]()


# ---------------------------------------------------------------- released config.json


def from_hf_config(cfg: dict[str, Any]) -> MolmoConfig:
    """Read a released Molmo / MolmoE `config.json` (plus the fixtures' vision extension keys)."""
    if cfg.get("format") == "molmo":
        return MolmoConfig.from_dict(cfg)
    d = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    is_moe = cfg.get("model_type") == "molmoe" or "moe_num_experts" in cfg or "num_experts" in cfg
    num_experts = int(cfg.get("moe_num_experts") or cfg.get("num_experts") or 0) if is_moe else 0
    vocab = cfg.get("vocab_size", 152064)
    llm = LLMConfig(
        d_model=d,
        layers=cfg["num_hidden_layers"],
        heads=heads,
        kv_heads=kv,
        head_dim=cfg.get("head_dim") or d // heads,
        # Dense: intermediate_size is the fused [up|gate] width; MoE: the per-expert width.
        ffn_hidden=cfg["intermediate_size"] if num_experts else cfg["intermediate_size"] // 2,
        qkv_bias=bool(cfg.get("qkv_bias", False)),
        qk_norm=bool(cfg.get("attention_layer_norm", num_experts > 0)),
        norm_after=bool(cfg.get("norm_after", False)),
        clip_qkv=cfg.get("clip_qkv"),
        rope_theta=float(cfg.get("rope_theta", 10000.0)),
        norm_eps=float(cfg.get("layer_norm_eps", 1e-5)),
        vocab_size=vocab,
        embedding_size=cfg.get("embedding_size") or vocab,
        additional_vocab_size=cfg.get("additional_vocab_size", 128),
        max_position_embeddings=cfg.get("max_position_embeddings", 4096),
        num_experts=num_experts,
        experts_top_k=int(cfg.get("moe_top_k") or cfg.get("num_experts_per_tok") or (8 if num_experts else 0)),
        norm_topk_prob=bool(cfg.get("norm_topk_prob", False)),
    )
    vision = VisionConfig()
    vb = cfg.get("vision_backbone")
    if vb:
        act = vb.get("image_mlp_activations", "quick_gelu")
        kind = vb.get("kind") or ("siglip" if act == "gelu_pytorch_tanh" else "clip")
        vision = VisionConfig(
            kind=kind,
            class_token=kind != "siglip",
            pre_ln=kind == "clip",
            patch_bias=kind != "clip",
            layer_scale=kind == "dino",
            image_size=tuple(vb.get("image_default_input_size", (336, 336))),
            patch_size=vb.get("image_patch_size", 14),
            width=vb.get("image_emb_dim", 1024),
            layers=vb.get("image_num_layers", 23),
            heads=vb.get("image_num_heads", 16),
            head_dim=vb.get("image_head_dim", 64),
            mlp_dim=vb.get("image_mlp_dim", 4096),
            activation={"gelu_pytorch_tanh": "gelu_tanh"}.get(act, act),
            norm_eps=vb.get("image_norm_eps", 1e-5),
        )
        if vision.num_positions != vb.get("image_num_pos", vision.num_positions):
            raise ValueError(
                f"config.json: image_num_pos {vb['image_num_pos']} does not match the "
                f"{vision.num_positions} positions of a {vision.image_size} image with patch {vision.patch_size}"
            )
    connector = ConnectorConfig(
        vit_layers=tuple(cfg.get("vit_layers", (-2, -9))),
        pooling=cfg.get("image_pooling_2d", "attention-meanq"),
        pool_h=cfg.get("image_pooling_h", 2),
        pool_w=cfg.get("image_pooling_w", 2),
        projector=cfg.get("image_projector", "mlp"),
        padding_embed=cfg.get("image_padding_embed", "pad_and_partial_pad"),
    )
    eos = cfg.get("eos_token_id")
    return MolmoConfig(
        vision=vision, connector=connector, llm=llm,
        special_token_ids=cfg.get("special_token_ids"),
        eos_token_id=eos[0] if isinstance(eos, list) else eos,
    )
