"""Fine-tuning never cuts answers: a large image whose sequence is too long at the configured crop budget is
kept whole with fewer crops (its answer tokens carry loss), an example too long even at one crop is skipped
with its line number in the log, and `molmo data validate --model` reports both before training."""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from molmo.cli import main as cli_main
from molmo.train import finetune
from molmo.train.batches import build_loader
from molmo.train.fit import own_data_plan, processor_for_checkpoint


def _data(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    Image.new("RGB", (64, 48), (0, 200, 0)).save(tmp_path / "small.png")
    long_answer = " ".join(["red"] * 60)
    (tmp_path / "d.jsonl").write_text(
        '{"image": "big.png", "question": "What colour is it?", "answer": "red"}\n'
        '{"image": "small.png", "question": "Colour?", "answer": "green"}\n'
        f'{{"image": "small.png", "question": "Say it often.", "answer": "{long_answer}"}}\n')
    return tmp_path / "d.jsonl"


def test_large_image_keeps_its_answer(tiny_checkpoint, tmp_path, capsys):
    data = _data(tmp_path)
    processor, context, _ = processor_for_checkpoint(tiny_checkpoint)
    at = {c: processor.encode(str(tmp_path / "big.png"), messages=[" User: What colour is it? Assistant:", " red"],
                               max_crops=c) for c in (2, 6)}
    assert len(at[6]["input_ids"]) > len(at[2]["input_ids"])
    length = len(at[2]["input_ids"]) + 8  # fits with 2 crops (the prompt template varies a little), not with 6

    plan = own_data_plan(data, processor, max_crops=6, sequence_length=length)
    assert [w for w, _, _ in plan.lowered] == ["d.jsonl:1"] and 2 <= plan.lowered[0][2] < 6
    assert plan.longest <= length
    assert [w for w, _ in plan.skipped] == ["d.jsonl:2,3"]  # the small image's lines, one example

    parser = argparse.ArgumentParser()
    finetune.add_arguments(parser)
    args = parser.parse_args(["--data", str(data), "--init", str(tiny_checkpoint), "--max-crops", "6",
                              "--sequence-length", str(length), "--batch", "1", "--steps", "1", "--out",
                              str(tmp_path / "ft")])
    cfg = finetune.build_config(args)
    log = capsys.readouterr().out
    assert "kept whole with fewer crops: d.jsonl:1" in log and "1 example(s) skipped" in log and "d.jsonl:2,3" in log
    from molmo.train.setup import build_model_and_processor

    _, train_processor, _ = build_model_and_processor(cfg)
    loader = build_loader(cfg, train_processor, rank=0, world_size=1)
    tok = train_processor.tokenizer
    seen = 0
    for batch in loader:
        b = batch if isinstance(batch, dict) else batch[0]
        ids, mask, labels = b["input_ids"][0], b["loss_masks"][0], b["labels"][0]
        assert len(ids) <= length
        answer = labels[mask > 0].tolist()
        assert answer and answer[-1] == tok.eos_token_id
        assert tok.decode(answer[:-1]).strip() == "red"  # the whole answer carries loss
        assert b["images"].shape[1] < at[6]["images"].shape[0]  # fewer crops than the budget of 6 gives
        seen += 1
    assert seen == 1
    assert "warning: skipped" in capsys.readouterr().err  # the small image's example, at run time too


def test_default_sequence_length_is_the_context(tiny_checkpoint, tmp_path):
    parser = argparse.ArgumentParser()
    finetune.add_arguments(parser)
    cfg = finetune.build_config(parser.parse_args(["--data", str(_data(tmp_path)), "--init", str(tiny_checkpoint)]))
    assert cfg.data.sequence_length == processor_for_checkpoint(tiny_checkpoint)[1]


def test_data_validate_reports_long_lines(tiny_checkpoint, tmp_path, capsys):
    data = _data(tmp_path)
    assert cli_main(["data", "validate", str(data), "--model", str(tiny_checkpoint)]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli_main(["data", "validate", str(data), "--model", str(tiny_checkpoint), "--sequence-length", "60",
                     "--max-crops", "6"]) == 1
    out = capsys.readouterr().out
    assert "skipped" in out and "d.jsonl:" in out
