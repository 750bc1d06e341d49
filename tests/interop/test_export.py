"""`molmo export`: our checkpoints -> the released HF layout. The conformance fixtures converted to our format
and exported again reproduce their config.json, preprocessor_config.json and tensors exactly and pass the
forward conformance cases; an export loads in our loader with identical tensors and identical greedy answers;
released folders come back unchanged; --base copies processor files and remote code and refuses another
architecture; a truncated shard is refused with the shard's name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from molmo.api import Molmo
from molmo.checkpoint.export import ExportError, export
from molmo.checkpoint.io import load_molmo, read_tensors, save_molmo
from molmo.cli import main as cli_main


def _to_ours(fixture, dest):
    model, _ = load_molmo(fixture)
    return save_molmo(model, dest, extra_files={"preprocessor_config.json": fixture / "preprocessor_config.json"})


@pytest.mark.parametrize("name", ["tiny_qwen2", "tiny_olmo"])
def test_fixture_export_reproduces_the_release(conformance_dir, tmp_path, name):
    fixture = conformance_dir / "models" / name
    ours = _to_ours(fixture, tmp_path / "ours")
    assert json.loads((ours / "config.json").read_text())["format"] == "molmo"
    assert cli_main(["export", str(ours), str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    for f in ("config.json", "preprocessor_config.json"):
        assert json.loads((out / f).read_text()) == json.loads((fixture / f).read_text()), f
    want, got = read_tensors(fixture), read_tensors(out)
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape and torch.equal(got[k], want[k]), k


def test_exported_fixtures_pass_forward_conformance(conformance_dir, tmp_path):
    from molmo.conformance.forward import run_cases

    root = tmp_path / "root"
    (root / "models").mkdir(parents=True)
    for entry in conformance_dir.iterdir():
        if entry.name != "models":
            (root / entry.name).symlink_to(entry)
    for name in ("tiny_qwen2", "tiny_olmo"):
        export(_to_ours(conformance_dir / "models" / name, tmp_path / f"ours-{name}"), root / "models" / name)
    results = run_cases(root)
    assert results and all(r.passed for r in results), [r for r in results if not r.passed]


def _image():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8))


def test_export_round_trip_sharded(tiny_checkpoint, tmp_path):
    out = export(tiny_checkpoint, tmp_path / "out", max_shard_bytes=200_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and all((out / s).is_file() for s in shards)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in read_tensors(out).values())
    assert {"tokenizer.json", "preprocessor_config.json", "config.json"} <= {p.name for p in out.iterdir()}
    a, b = Molmo.from_pretrained(tiny_checkpoint), Molmo.from_pretrained(out)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sorted(sa) == sorted(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    img = _image()
    for q in ("What is this?", "How many cats are there?"):
        assert a.ask(img, q, max_new_tokens=8).text == b.ask(img, q, max_new_tokens=8).text
    again = export(out, tmp_path / "again")  # a released folder comes back unchanged
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in out.iterdir())
    assert all((again / p.name).read_bytes() == p.read_bytes() for p in out.iterdir())


def test_embedded_model_export_folds_the_image_scale(tmp_path):
    from molmo.api import DEFAULT_MODEL_DIR

    out = export(DEFAULT_MODEL_DIR, tmp_path / "out", dtype=torch.bfloat16)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["torch_dtype"] == "bfloat16" and "image_scale" not in json.dumps(cfg)
    assert all(t.dtype == torch.bfloat16 for t in read_tensors(out).values())
    a = Molmo.from_pretrained(DEFAULT_MODEL_DIR)
    b = Molmo.from_pretrained(out)  # loads as float32
    assert b.model.config.connector.image_scale == 1.0 != a.model.config.connector.image_scale
    batch = a.processor.apply_chat_template([{"role": "user", "content": [
        {"type": "image", "image": _image()}, {"type": "text", "text": "What time is it?"}]}])
    with torch.no_grad():
        la, lb = a.model(**batch).logits, b.model(**batch).logits
    assert (la - lb).abs().max() < 0.05 * la.abs().max()  # bf16 rounding of the weights only


def test_base_copies_remote_code_and_checks_architecture(conformance_dir, tmp_path):
    fixture = conformance_dir / "models" / "tiny_qwen2"
    base = tmp_path / "base"
    shutil.copytree(fixture, base)
    (base / "modeling_molmo.py").write_text("# remote code\n")
    (base / "config_molmo.py").write_text("# remote config\n")
    (base / "processor_config.json").write_text('{"processor_class": "MolmoProcessor"}')
    cfg = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**cfg, "transformers_version": "4.43.3"}))
    out = export(_to_ours(fixture, tmp_path / "ours"), tmp_path / "out", base=base)
    for f in ("modeling_molmo.py", "config_molmo.py", "processor_config.json"):
        assert (out / f).read_bytes() == (base / f).read_bytes()
    assert json.loads((out / "config.json").read_text())["transformers_version"] == "4.43.3"
    other = _to_ours(conformance_dir / "models" / "tiny_olmo", tmp_path / "olmo")
    with pytest.raises(ExportError, match=r"different architecture.*llm\.(d_model|layers|qkv_bias)"):
        export(other, tmp_path / "bad", base=base)
    assert not (tmp_path / "bad").exists()


def test_truncated_shard_is_refused(tiny_checkpoint, tmp_path):
    out = export(tiny_checkpoint, tmp_path / "out", max_shard_bytes=200_000)
    shard = sorted(out.glob("model-*.safetensors"))[1]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(Exception, match=shard.name):
        Molmo.from_pretrained(out)
