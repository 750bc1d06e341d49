"""`--dtype` (auto / float32 / bfloat16 / float16), `--device`, `--seed` and `--quantize` on `molmo ask` and `molmo eval`."""

from __future__ import annotations

import json

import torch
from PIL import Image

from molmo.api import Molmo
from molmo.cli import main as cli_main


def test_ask_dtype_device_seed(tiny_checkpoint, tmp_path, capsys):
    Image.new("RGB", (80, 60), (200, 0, 0)).save(tmp_path / "a.png")
    common = ["ask", "--model", str(tiny_checkpoint), "--json", "--max-new-tokens", "6", str(tmp_path / "a.png"), "hi"]
    answers = []
    for extra in (["--temperature", "1.5", "--seed", "3"], ["--temperature", "1.5", "--seed", "3"],
                  ["--dtype", "bfloat16", "--device", "cpu"], ["--dtype", "auto"], ["--quantize", "int8"]):
        assert cli_main(common + extra) == 0, capsys.readouterr().err
        answers.append(json.loads(capsys.readouterr().out)["text"])
    assert answers[0] == answers[1]  # the same seed samples the same answer
    assert Molmo.from_pretrained(tiny_checkpoint, dtype="float16").model.llm.lm_head.weight.dtype == torch.float16
    assert cli_main(common + ["--quantize", "int3"]) == 2  # refused at parse time
    assert "--quantize" in capsys.readouterr().err
    assert Molmo.from_pretrained(tiny_checkpoint, dtype="auto", device="auto").model.llm.lm_head.weight.dtype in (
        torch.float32, torch.bfloat16)


def test_eval_dtype_and_seed(tiny_checkpoint, tmp_path, capsys):
    Image.new("RGB", (80, 60), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "d.jsonl").write_text('{"image": "a.png", "question": "Colour?", "answer": "red"}\n')
    assert cli_main(["eval", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "d.jsonl"), "--out",
                     str(tmp_path / "ev"), "--dtype", "bfloat16", "--device", "cpu", "--seed", "1"]) == 0
    assert (tmp_path / "ev" / "metrics.json").is_file()
    assert cli_main(["eval", "--model", str(tiny_checkpoint), "--data", str(tmp_path / "d.jsonl"), "--out",
                     str(tmp_path / "ev2"), "--device", "cuda:7"]) == 2 or torch.cuda.device_count() > 7
