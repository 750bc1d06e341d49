"""Fine-tuning never cuts answers: a large image whose sequence is too long at the configured crop budget is
kept whole with fewer crops (its answer tokens carry loss), an image whose question-answer pairs together are too
long even at one crop keeps the pairs that fit, a single pair too long even at one crop is skipped with its line
number in the log, and `molmo data validate --model` reports all three before training."""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from molmo.cli import main as cli_main
from molmo.train import finetune
from molmo.train.batches import build_loader
from molmo.train.fit import fit_example, own_data_plan, processor_for_checkpoint


def _data(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    Image.new("RGB", (64, 48), (0, 200, 0)).save(tmp_path / "small.png")
    Image.new("RGB", (48, 64), (0, 0, 200)).save(tmp_path / "other.png")
    long_answer = " ".join(["red"] * 60)
    (tmp_path / "d.jsonl").write_text(
        '{"image": "big.png", "question": "What colour is it?", "answer": "red"}\n'
        '{"image": "small.png", "question": "Colour?", "answer": "green"}\n'
        f'{{"image": "small.png", "question": "Say it often.", "answer": "{long_answer}"}}\n'
        f'{{"image": "other.png", "question": "Say it often.", "answer": "{long_answer}"}}\n')
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
    assert plan.trimmed == [("d.jsonl:2,3", 1, 2)]  # the small image's lines, one example: "green" fits alone
    assert [w for w, _ in plan.skipped] == ["d.jsonl:4"]

    parser = argparse.ArgumentParser()
    finetune.add_arguments(parser)
    args = parser.parse_args(["--data", str(data), "--init", str(tiny_checkpoint), "--max-crops", "6",
                              "--sequence-length", str(length), "--batch", "1", "--steps", "3", "--out",
                              str(tmp_path / "ft")])
    cfg = finetune.build_config(args)
    log = capsys.readouterr().out
    assert "kept whole with fewer crops: d.jsonl:1" in log and "1 example(s) skipped" in log and "d.jsonl:4" in log
    assert "keep only the question-answer pairs that fit" in log and "d.jsonl:2,3 (1 of 2 pairs)" in log
    from molmo.train.setup import build_model_and_processor

    _, train_processor, _ = build_model_and_processor(cfg)
    loader = build_loader(cfg, train_processor, rank=0, world_size=1)
    tok = train_processor.tokenizer
    answers = []
    for batch in loader:
        b = batch if isinstance(batch, dict) else batch[0]
        ids, mask, labels = b["input_ids"][0], b["loss_masks"][0], b["labels"][0]
        assert len(ids) <= length
        answer = labels[mask > 0].tolist()
        assert answer and answer[-1] == tok.eos_token_id and tok.eos_token_id not in answer[:-1]
        answers.append(tok.decode(answer[:-1]).strip())  # the whole answer carries loss
        if answers[-1] == "red":
            assert b["images"].shape[1] < at[6]["images"].shape[0]  # fewer crops than the budget of 6 gives
    assert len(answers) == 3 and set(answers) == {"green", "red"}  # one epoch: the skipped key gives the next item
    assert "warning: skipped" in capsys.readouterr().err  # the other image's example, at run time too


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


def test_fit_example_keeps_the_budget_and_the_pairs_that_fit():
    def fitter(pair_lengths):  # 10 tokens per crop plus the kept pairs' tokens
        return lambda crops, kept: {"input_ids": np.empty(10 * crops + sum(pair_lengths[j] for j in kept))}

    process = fitter([30, 80, 20, 50])  # 190 text tokens: too long even at one crop (200 > 100)
    fit = fit_example(process, 4, 100, pairs=4)
    assert fit.pairs == (0, 2) and fit.crops == 4 and len(fit.example["input_ids"]) == 90
    process = fitter([50, 30])  # whole at two crops
    fit = fit_example(process, 4, 100, pairs=2)
    assert fit.pairs == (0, 1) and fit.crops == 2
    process = fitter([85, 20])  # the long pair alone fits only at one crop: the budget is kept, it is dropped
    assert fit_example(process, 4, 100, pairs=2).pairs == (1,)
    process = fitter([85])  # a single pair is never dropped, its budget is lowered
    assert fit_example(process, 4, 100).crops == 1
    process = fitter([95, 99])  # no pair fits even alone at one crop
    assert fit_example(process, 4, 100, pairs=2) is None
