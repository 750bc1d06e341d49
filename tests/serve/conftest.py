"""Fixtures for the serving tests: one small random Molmo checkpoint per session (tiny-qwen2 shapes with a BPE
tokenizer trained on a few strings), the loaded API object, sample images, and a scripted `generate` that makes
the model "say" a chosen text so points / counts can be checked end to end."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from molmo.api import Molmo
from molmo.checkpoint.io import save_molmo
from molmo.model.config import preset
from molmo.model.molmo import MolmoModel
from molmo.serve.scheduler import ContinuousBatcher
from molmo.text.tokenizer import train_bpe_tokenizer

TRAIN_TEXTS = [
    " User: Point to the red circle. Assistant:",
    ' <point x="25.0" y="50.0" alt="red circle">red circle</point>',
    ' <points x1="10.0" y1="20.0" x2="80.5" y2="90.0" alt="cats">cats</points>',
    " Counting the dots shows a total of 3. There are none.",
    " User: How many cats are there? Assistant: What is this? Describe this image.",
    " long_caption 65: A photo of a cat sitting on a red mat next to a blue ball. é ü 日本",
]


def make_checkpoint(path):
    tok = train_bpe_tokenizer(TRAIN_TEXTS * 20, vocab_size=300)
    ids = tok.image_token_ids
    special = {"<im_start>": ids.start, "<im_end>": ids.end, "<im_patch>": ids.patch, "<im_col>": ids.col,
               "<|image|>": ids.image}
    config = preset("tiny-qwen2").replace(special_token_ids=special, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = MolmoModel(config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    tok.save(path)
    tmp_tok = path / "tokenizer.json"
    pre = {"base_image_input_size": [112, 112], "image_patch_size": 14, "max_crops": 2, "overlap_margins": [2, 2]}
    (path / "preprocessor_config.json").write_text(json.dumps(pre))
    save_molmo(model, path / "ckpt", extra_files={"tokenizer.json": tmp_tok,
                                                  "preprocessor_config.json": path / "preprocessor_config.json"})
    return path / "ckpt"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("tiny-serve"))


@pytest.fixture(scope="session")
def api_model(checkpoint) -> Molmo:
    return Molmo.from_pretrained(checkpoint)


def png_bytes(size=(80, 60), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def send_png(handler) -> None:
    """Answer a test image host's request (an http.server handler) with `png_bytes()`."""
    body = png_bytes()
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))


@pytest.fixture
def scripted(monkeypatch):
    """`scripted(text)` makes every generate call emit `text` (then EOS) through the real API path."""
    import molmo.model.generation as generation

    def install(text: str, tokenizer):
        ids = tokenizer.encode(text)

        def fake_generate(model, batch, *, max_new_tokens, on_token=None, **kw):
            rows = batch["input_ids"].shape[0]
            out = ids[:max_new_tokens]
            for step, tok in enumerate(out):
                for r in range(rows):
                    if on_token:
                        on_token(r, tok)
            reason = "length" if len(ids) > max_new_tokens else "stop"
            return generation.GenerationOutput(tokens=[list(out) for _ in range(rows)],
                                               finish_reasons=[reason] * rows)

        monkeypatch.setattr(generation, "generate", fake_generate)

        def fake_choose(rows, logits):  # the continuous scheduler picks each row's next scripted token
            eos = tokenizer.eos_token_id
            return [ids[len(r.tokens)] if len(r.tokens) < len(ids) else eos for r in rows]

        monkeypatch.setattr(ContinuousBatcher, "_choose", staticmethod(fake_choose))

    return install
