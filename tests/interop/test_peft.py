"""PEFT-format LoRA adapters: the files match what `peft` itself writes (names, config fields), peft reads our
adapter and applies it exactly as we do, applying an adapter equals the merged weights `molmo finetune --lora`
writes, `molmo ask --adapter` uses it, and an adapter for another base fails naming modules and shapes."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from molmo.api import Molmo
from molmo.checkpoint.io import load_molmo
from molmo.checkpoint.names import released_module_name, to_released
from molmo.cli import main as cli_main
from molmo.checkpoint.lora import AdapterError, LoraConfig, apply_lora, load_adapter, save_adapter

peft = pytest.importorskip("peft")  # test-only dependency
transformers = pytest.importorskip("transformers")
KEY = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])\.weight$")


def _our_adapter(checkpoint, out, rank=4, alpha=8.0):
    model, cfg = load_molmo(checkpoint)
    apply_lora(model, LoraConfig(rank=rank, alpha=alpha))
    torch.manual_seed(1)
    for n, p in model.named_parameters():
        if n.endswith("lora_b"):
            nn.init.normal_(p, std=0.05)
    save_adapter(out, model, LoraConfig(rank=rank, alpha=alpha, base_model=str(checkpoint)))
    return model, cfg


def test_files_match_what_peft_writes(tiny_checkpoint, tmp_path):
    config = transformers.Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1)
    torch.manual_seed(0)
    hf_model = transformers.Qwen2ForCausalLM(config)
    peft_cfg = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                               target_modules=r"model\.layers\.\d+\.(self_attn\.q_proj|mlp\.down_proj)")
    peft.get_peft_model(hf_model, peft_cfg).save_pretrained(tmp_path / "peft")
    theirs_cfg = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    theirs = load_file(str(tmp_path / "peft" / "adapter_model.safetensors"))
    hf_modules = dict(hf_model.named_modules())
    assert theirs and all(KEY.match(k) and KEY.match(k).group(1) in hf_modules for k in theirs)

    model, cfg = _our_adapter(tiny_checkpoint, tmp_path / "ours")
    ours_cfg = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    ours = load_file(str(tmp_path / "ours" / "adapter_model.safetensors"))
    released = {k.rsplit(".", 1)[0] for k in to_released(load_molmo(tiny_checkpoint)[0].state_dict(), cfg)}
    assert ours and all(KEY.match(k) and KEY.match(k).group(1) in released for k in ours)
    assert set(ours_cfg) <= set(theirs_cfg)
    for key in ("peft_type", "task_type", "bias", "use_rslora", "use_dora", "fan_in_fan_out"):
        assert ours_cfg[key] == theirs_cfg[key], key
    assert (ours_cfg["r"], ours_cfg["lora_alpha"]) == (4, 8.0)
    for k, a in ours.items():  # lora_A [r, in], lora_B [out, r], as in peft's file
        kind = KEY.match(k).group(2)
        assert a.shape[0 if kind == "A" else 1] == 4
    # peft's own matcher, on our config, selects exactly the modules our adapter holds
    from peft.tuners.tuners_utils import check_target_module_exists

    loaded = peft.LoraConfig.from_pretrained(tmp_path / "ours")
    wrapped = {KEY.match(k).group(1) for k in ours}
    assert {m for m in released if check_target_module_exists(loaded, m)} == wrapped
    assert released_module_name("llm.lm_head") not in wrapped  # "ff_out" the LM head is not a target


class _Mirror(nn.Module):
    """A module tree with the released names whose targeted Linear layers carry the base weights."""

    def prepare_inputs_for_generation(self, *a, **k):  # PeftModelForCausalLM asks for it
        raise NotImplementedError


def test_peft_applies_our_adapter_as_we_do(tiny_checkpoint, tmp_path):
    ours, cfg = _our_adapter(tiny_checkpoint, tmp_path / "ours")
    base, _ = load_molmo(tiny_checkpoint)
    mirror = _Mirror()
    targets = {KEY.match(k).group(1) for k in load_file(str(tmp_path / "ours" / "adapter_model.safetensors"))}
    ours_modules = dict(ours.named_modules())
    from molmo.checkpoint.names import ours_module_name

    for name in targets:
        src = base.get_submodule(ours_module_name(name))
        parent = mirror
        *path, leaf = name.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        lin = nn.Linear(src.in_features, src.out_features, bias=src.bias is not None)
        lin.load_state_dict(src.state_dict())
        parent.add_module(leaf, lin)
    pm = peft.PeftModel.from_pretrained(mirror, tmp_path / "ours")
    for name in targets:
        layer = pm.base_model.model.get_submodule(name)
        mine = ours_modules[ours_module_name(name)]
        xi = torch.randn(3, mine.in_features)
        with torch.no_grad():
            assert torch.allclose(layer(xi), mine(xi), atol=1e-5), name


def test_finetune_lora_adapter_equals_merged_model(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (120, 90), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "d.jsonl").write_text('{"image": "a.png", "question": "Colour?", "answer": "red"}\n' * 4)
    out = tmp_path / "ft"
    assert cli_main(["finetune", "--data", str(tmp_path / "d.jsonl"), "--init", str(tiny_checkpoint), "--lora",
                     "--rank", "2", "--steps", "2", "--batch", "2", "--lr", "1e-2", "--out", str(out)]) == 0
    adapter_cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_cfg["base_model_name_or_path"] == str(tiny_checkpoint) and adapter_cfg["r"] == 2
    merged = Molmo.from_pretrained(out / "model")
    applied = Molmo.from_pretrained(tiny_checkpoint, adapter=out / "adapter")
    plain = Molmo.from_pretrained(tiny_checkpoint)
    batch = plain.processor.apply_chat_template([{"role": "user", "content": [
        {"type": "image", "image": Image.open(tmp_path / "a.png")}, {"type": "text", "text": "Colour?"}]}])
    with torch.no_grad():
        lm, la, lp = (m.model(**batch).logits for m in (merged, applied, plain))
    assert torch.allclose(lm, la, atol=1e-4) and not torch.allclose(lm, lp, atol=1e-3)
    unmerged, _ = load_molmo(tiny_checkpoint)
    load_adapter(unmerged, out / "adapter")  # the adapter applied as LoRA layers, not merged
    with torch.no_grad():
        assert torch.allclose(unmerged(**batch).logits, lm, atol=1e-4)
    capsys.readouterr()
    assert cli_main(["ask", "--model", str(tiny_checkpoint), "--adapter", str(out / "adapter"), "--json",
                     "--max-new-tokens", "3", str(tmp_path / "a.png"), "Colour?"]) == 0
    assert json.loads(capsys.readouterr().out)["usage"]["completion_tokens"] >= 1


def test_adapter_for_another_base(tiny_checkpoint, conformance_dir, tmp_path, capsys):
    _our_adapter(tiny_checkpoint, tmp_path / "ours")
    other, _ = load_molmo(conformance_dir / "models" / "tiny_olmo")
    with pytest.raises(AdapterError, match=r"does not fit this model.*shape mismatch.*att_proj: lora_A \[4, \d+\]"):
        load_adapter(other, tmp_path / "ours")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")  # a real image: it is checked before the model loads
    assert cli_main(["ask", "--model", str(conformance_dir / "models" / "tiny_qwen2"), "--adapter",
                     str(tmp_path / "nowhere"), str(tmp_path / "x.png"), "hi"]) == 2
    assert "not a PEFT adapter folder" in capsys.readouterr().err
    cfg = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    (tmp_path / "ours" / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(AdapterError, match="does not support: {'use_dora': True}"):
        load_adapter(load_molmo(tiny_checkpoint)[0], tmp_path / "ours")
