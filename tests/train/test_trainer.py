"""The training loop: loss normalisation over micro-batches and ranks, kill-and-resume, non-finite loss,
outputs (metrics, loss curve, exported checkpoint), config errors, FlexAttention vs the dense mask."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from molmo.checkpoint.io import load_molmo
from molmo.train import checkpointing, trainer
from molmo.train.config import ConfigError, apply_overrides
from molmo.train.presets import get


def losses(out: str | Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # 20-50 s of training on 2 loaded cores: the full suite (-m "slow or not slow") runs it
def test_micro_batches_give_the_global_batch_loss(tiny_cfg, tmp_path):
    base = dataclasses.replace(tiny_cfg, steps=3, residual_dropout=0.0, save_every=100)
    a = dataclasses.replace(base, micro_batch=1, out_dir=str(tmp_path / "a"))
    b = dataclasses.replace(base, micro_batch=4, out_dir=str(tmp_path / "b"), tokenizer=str(tmp_path / "a"))
    trainer.train(a)
    trainer.train(b)
    assert losses(a.out_dir) == pytest.approx(losses(b.out_dir), rel=1e-5, abs=1e-6)


def test_a_step_is_split_into_micro_batches_of_similar_length_keeping_every_example():
    """Short examples are not padded to the step's longest (the loss is normalised over the whole step, so the
    grouping cannot change it: the test above)."""
    import numpy as np
    from molmo.train.batches import StepCollator
    lengths = [5, 50, 6, 48, 7, 9]
    examples = [{"input_ids": np.full(n, k, np.int64), "labels": np.full(n, k, np.int64),
                 "loss_masks": np.ones(n, np.float32)} for k, n in enumerate(lengths)]
    batches = StepCollator(sequence_length=40, micro_batch=2)(examples)
    assert [tuple(b["input_ids"].shape) for b in batches] == [(2, 6), (2, 9), (2, 40)]  # cut at sequence_length
    rows = [row[row >= 0] for b in batches for row in b["input_ids"]]
    assert sorted(int(r[0]) for r in rows) == list(range(6))  # every example once
    assert all(len(r) == min(lengths[int(r[0])], 40) and (r == r[0]).all() for r in rows)


@pytest.mark.slow  # 20-50 s of training on 2 loaded cores: the full suite (-m "slow or not slow") runs it
def test_kill_and_resume_continues_identically(tiny_cfg, tmp_path, monkeypatch):
    full = dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "full"))
    trainer.train(full)
    killed = dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "killed"), tokenizer=str(tmp_path / "full"))
    real_save = checkpointing.save

    def save_then_die(out, step, *args):
        real_save(out, step, *args)
        raise KeyboardInterrupt  # killed right after the step-2 checkpoint

    monkeypatch.setattr(checkpointing, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(killed)
    monkeypatch.setattr(checkpointing, "save", real_save)
    assert checkpointing.latest(Path(killed.out_dir)).name == "step_0000002"
    assert len(losses(killed.out_dir)) == 2
    trainer.train(killed)
    assert losses(killed.out_dir) == pytest.approx(losses(full.out_dir), rel=1e-6, abs=1e-7)


def test_interrupted_save_keeps_previous_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    cfg = dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "run"))
    calls = {"n": 0}
    real = checkpointing.dcp.save

    def flaky(state, checkpoint_id):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")  # the second save dies half way
        return real(state, checkpoint_id=checkpoint_id)

    monkeypatch.setattr(checkpointing.dcp, "save", flaky)
    with pytest.raises(OSError):
        trainer.train(cfg)
    assert checkpointing.latest(Path(cfg.out_dir)).name == "step_0000002"


@pytest.mark.slow  # 20-50 s of training on 2 loaded cores: the full suite (-m "slow or not slow") runs it
def test_outputs_and_export(tiny_cfg, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, export=True, eval_every=2, out_dir=str(tmp_path / "run"))
    path = trainer.train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"lr/connector", "lr/vit", "lr/llm", "grad_norm/llm", "tokens_per_s"} <= set(rows[0])
    assert all(0 <= r["data_wait"] <= r["step_time"] for r in rows)
    assert "val_loss" in rows[1] and "val_loss" not in rows[0]
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    model, _ = load_molmo(path)
    assert (path / "tokenizer.json").exists() and (path / "preprocessor_config.json").exists()
    assert model.config.eos_token_id is not None


def test_non_finite_loss_names_the_step(tiny_cfg, tmp_path, monkeypatch):
    def nan_loss(*args, **kwargs):
        ce, z, w = real(*args, **kwargs)
        return ce * float("nan"), z, w

    real = trainer.micro_batch_loss
    monkeypatch.setattr(trainer, "micro_batch_loss", nan_loss)
    with pytest.raises(trainer.TrainingError, match="at step 1"):
        trainer.train(dataclasses.replace(tiny_cfg, out_dir=str(tmp_path / "nan")))


def test_a_run_folder_another_process_trains_is_refused_until_that_process_dies(tiny_cfg, tmp_path):
    """Two trainers in one run folder would overwrite each other's checkpoints (a killed chain leaves its
    trainer running): the second stops before building anything, naming the first; a killed holder frees it."""
    from molmo.train.runs import RunFolderBusy, hold_run_folder
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from molmo.train.runs import hold_run_folder; "
                               f"h = hold_run_folder({str(out)!r}); print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=f"pid {holder.pid}"):
            trainer.train(dataclasses.replace(tiny_cfg, out_dir=str(out)))
        assert not (out / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    lock = hold_run_folder(out)  # the kernel released the dead holder's lock
    assert (out / ".train.lock").read_text().strip() == str(os.getpid())
    lock.close()


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown training preset"):
        get("tiny-nothing")
    cfg = get("tiny-sft")
    with pytest.raises(ConfigError, match="no field 'lrr'"):
        apply_overrides(cfg, ["--optim.llm.lrr=1"])
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(cfg, ["--steps=many"])
    assert apply_overrides(cfg, ["--optim.llm.lr=3e-4", "--steps=7"]).optim.llm.lr == 3e-4


def test_bad_data_path(tiny_cfg, tmp_path):
    from molmo.data.owndata import OwnDataError
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "missing.png", "question": "q", "answer": "a"}\n')
    cfg = dataclasses.replace(tiny_cfg, data=dataclasses.replace(
        tiny_cfg.data, sources=(dataclasses.replace(tiny_cfg.data.sources[0], path=str(bad)),)))
    with pytest.raises(OwnDataError, match="bad.jsonl:1"):
        trainer.train(cfg)


@pytest.mark.slow  # 20-50 s of training on 2 loaded cores: the full suite (-m "slow or not slow") runs it
def test_two_process_fsdp_matches_one_process(tiny_cfg, tmp_path):
    """torchrun with 2 CPU processes (gloo, FSDP2) gives the 1-process losses for the same global batch."""
    cfg = dataclasses.replace(tiny_cfg, steps=3, residual_dropout=0.0, save_every=2)
    one = dataclasses.replace(cfg, out_dir=str(tmp_path / "one"))
    trainer.train(one)
    two = dataclasses.replace(cfg, out_dir=str(tmp_path / "two"), tokenizer=one.out_dir)
    script = tmp_path / "run.py"
    script.write_text("import json, sys\nfrom molmo.train.config import TrainConfig, from_dict\n"
                      "from molmo.train.trainer import train\n"
                      f"train(from_dict(TrainConfig, json.loads(open({str(tmp_path / 'cfg.json')!r}).read())))\n")
    (tmp_path / "cfg.json").write_text(two.to_json())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert losses(two.out_dir) == pytest.approx(losses(one.out_dir), rel=1e-5, abs=1e-6)
    assert checkpointing.latest(Path(two.out_dir)).name == "step_0000003"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FlexAttention kernels need a GPU (run on a lent one)")
def test_flex_attention_matches_dense_mask():
    from molmo.model.config import preset
    from molmo.model.molmo import MolmoModel
    torch.manual_seed(0)
    model = MolmoModel(preset("tiny-qwen2")).cuda().eval()
    ids = torch.randint(0, 500, (2, 96), device="cuda")
    ids[1, 80:] = -1
    sub = torch.full_like(ids, 10000)
    sub[:, 40:60], sub[:, 60:] = 0, 1
    pos = torch.arange(96, device="cuda").expand(2, -1).clone()
    dense = model(ids, subsegment_ids=sub, position_ids=pos).logits
    model.llm.attention_backend = "flex"
    flex = model(ids, subsegment_ids=sub, position_ids=pos).logits
    valid = ids != -1
    torch.testing.assert_close(flex[valid], dense[valid], rtol=1e-4, atol=1e-4)


def test_a_source_can_keep_the_pretraining_format_inside_fine_tuning(circles):
    from molmo.train.config import DataConfig, DataSource
    from molmo.train.batches import MixtureDataset
    sources = (DataSource("sft", "owndata", path=str(circles)),
               DataSource("captions", "owndata", path=str(circles), stage="pretrain"))
    ds = MixtureDataset(sources, DataConfig(sources=sources, stage="sft"), processor=None, seed=0)
    example = ds.collections[0][0]
    sft, pretrain = (f.format(example, index=0, epoch=0) for f in ds.formatters)
    assert all(turns[0].startswith(" User:") for turns in sft)
    assert len(pretrain) == 1 and pretrain[0][0].startswith(" long_caption ")  # the caption with its length hint
    assert pretrain[0][1] == " " + example.annotations[-1].answer


def test_a_source_can_keep_only_some_annotation_kinds(circles):
    from molmo.data.generators import generate_one
    from molmo.train.config import DataSource
    from molmo.train.batches import DataError, open_source
    qa = open_source(DataSource("qa", "owndata", path=str(circles), annotation_kinds=("qa",)))
    assert [a.kind for a in qa[0].annotations] == ["qa"]
    assert {a.kind for a in open_source(DataSource("all", "owndata", path=str(circles)))[0].annotations} >= \
        {"qa", "count", "caption"}
    # generated point scenes: items without a "How many" row give way to the next item that has one
    points = open_source(DataSource("p", "generator:points", size=50, seed=3, annotation_kinds=("qa",)))
    firsts = [points[i] for i in range(20)]
    assert all(a.kind == "qa" and a.question.startswith("How many") for e in firsts for a in e.annotations)
    without = [i for i in range(20) if not any("question" in a for a in generate_one("points", 3, i).annotations)]
    assert without and points[without[0]].id != f"points-3-{without[0]}"
    with pytest.raises(DataError, match="unknown annotation kinds"):
        open_source(DataSource("x", "owndata", path=str(circles), annotation_kinds=("questions",)))
    with pytest.raises(DataError, match="no annotation of kinds"):
        open_source(DataSource("x", "owndata", path=str(circles), annotation_kinds=("mc",)))[0]


def test_a_source_can_ask_one_question_per_image_and_another_on_reuse(circles):
    from molmo.train.config import ConfigError, DataConfig, DataSource
    from molmo.train.batches import MixtureDataset
    sources = (DataSource("one", "owndata", path=str(circles), annotations_per_example=1),
               DataSource("all", "owndata", path=str(circles)))
    ds = MixtureDataset(sources, DataConfig(sources=sources, stage="sft"), processor=None, seed=0)
    example = ds.collections[0][0]
    every = ds.formatters[1].format(example, index=0, epoch=0)
    ones = [ds.formatters[0].format(example, index=0, epoch=e) for e in range(20)]
    assert len(every) == len(example.annotations) > 1 and all(len(o) == 1 for o in ones)
    assert len({o[0][1] for o in ones}) > 1 and {o[0][1] for o in ones} <= {turns[1] for turns in every}
    with pytest.raises(ConfigError, match="annotations_per_example"):
        DataSource("x", "owndata", path=str(circles), annotations_per_example=-1)


def test_a_run_config_written_before_the_rename_still_loads():
    from molmo.train.config import DataSource, from_dict
    old = {"name": "qa", "kind": "owndata", "path": "d.jsonl", "kinds": ["qa"]}
    assert from_dict(DataSource, old).annotation_kinds == ("qa",)


def test_run_config_kinds_are_choices_that_read_and_write_plain_strings():
    from molmo.train.config import Attention, ConfigError, TrainConfig, apply_overrides, from_dict
    cfg = apply_overrides(TrainConfig(), ["--attention=sdpa", "--data.stage=pretrain", "--precision=fp32"])
    assert cfg.attention is Attention.SDPA and cfg.data.stage == "pretrain" and cfg.precision == "fp32"
    assert from_dict(TrainConfig, json.loads(cfg.to_json())) == cfg
    assert json.loads(cfg.to_json())["data"]["multi_annotation_weighting"] == "root_subsegments"
    with pytest.raises(ConfigError, match=r"TrainConfig.attention must be one of \['sdpa', 'flex', 'auto'\], got 'dense'"):
        apply_overrides(TrainConfig(), ["--attention=dense"])
