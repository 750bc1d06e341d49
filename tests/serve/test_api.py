"""The Python API on a small random checkpoint: loading, answers, streaming, batching, points in pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from molmo.api import Answer, ModelNotFoundError, Molmo, StreamDecoder
from molmo.image.loading import ImageError


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        Molmo.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="unknown dtype"):
        Molmo.from_pretrained(tmp_path, dtype="int3")


def test_bfloat16_load(checkpoint, image):
    model = Molmo.from_pretrained(checkpoint, dtype="bfloat16")
    assert next(model.model.parameters()).dtype == torch.bfloat16
    answer = model.ask(image, "What is this?", max_new_tokens=4)
    assert answer.usage.completion_tokens <= 4


def test_ask_streams_the_answer_and_reports_usage(api_model, image):
    deltas: list[str] = []
    answer = api_model.ask(image, "What is this?", max_new_tokens=12, stream=deltas.append)
    assert isinstance(answer, Answer)
    assert "".join(deltas).strip() == answer.text
    assert answer.finish_reason in ("stop", "length")
    assert 1 <= answer.usage.completion_tokens <= 12
    assert answer.usage.prompt_tokens > 16  # image tokens + prompt
    assert answer.image_size == (80, 60)


def test_ask_many_matches_one_at_a_time(api_model, image):
    blank = np.full((40, 90, 3), 255, np.uint8)
    single = [api_model.ask(img, q, max_new_tokens=8) for img, q in ((image, "What is this?"), (blank, "Point to the cat."))]
    batched = api_model.ask_many([image, blank], ["What is this?", "Point to the cat."], max_new_tokens=8)
    assert [a.text for a in batched] == [a.text for a in single]
    assert batched[1].image_size == (90, 40)


def test_image_inputs_of_every_kind_agree(api_model, image, tmp_path):
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    image.save(tmp_path / "img.png")
    answers = [api_model.ask(src, "What is this?", max_new_tokens=5).text
               for src in (image, np.asarray(image), buf.getvalue(), tmp_path / "img.png", str(tmp_path / "img.png"))]
    assert len(set(answers)) == 1
    with pytest.raises(ImageError):
        api_model.ask(b"not an image", "What is this?")
    with pytest.raises(ValueError, match="non-empty"):
        api_model.ask(image, "  ")


def test_scripted_points_come_back_in_pixels(api_model, image, scripted):
    scripted(' <points x1="10.0" y1="20.0" x2="80.5" y2="90.0" alt="cats">cats</points>', api_model.tokenizer)
    answer = api_model.point(image, "cats")  # 80x60 image
    assert [(round(p.x, 2), round(p.y, 2), p.label) for p in answer.points] == [(8.0, 12.0, "cats"), (64.4, 54.0, "cats")]
    scripted(" Counting the dots shows a total of 3.", api_model.tokenizer)
    assert api_model.count(image, "dots").count == 3


def test_stop_strings_and_per_row_limits(api_model, image, scripted):
    scripted(" Counting the dots shows a total of 3.", api_model.tokenizer)
    deltas: list[str] = []
    answer = api_model.ask(image, "Count the dots.", stop=["shows"], stream=deltas.append)
    assert answer.text == "Counting the dots" and answer.finish_reason == "stop"
    assert "shows" not in "".join(deltas) and "".join(deltas).strip() == answer.text
    # rows of one batch keep their own limits
    from molmo.api import GenerationRequest
    reqs = [GenerationRequest(image, " User: a Assistant:", 2), GenerationRequest(image, " User: b Assistant:", 50)]
    short, long = api_model.generate_requests(reqs)
    assert short.usage.completion_tokens == 2 and short.finish_reason == "length"
    assert long.finish_reason == "stop" and long.text.endswith("total of 3.")


def test_caption_uses_the_length_hint_prompt(api_model, image, monkeypatch):
    seen = {}
    real = api_model.generate_requests

    def spy(reqs, **kw):
        seen["text"] = reqs[0].text
        return real(reqs, **kw)

    monkeypatch.setattr(api_model, "generate_requests", spy)
    api_model.caption(image, length=12, max_new_tokens=3)
    assert seen["text"] == " long_caption 12:"


def test_stream_decoder_waits_for_whole_characters(api_model):
    tok = api_model.tokenizer
    ids = tok.encode(" é ü 日本")
    dec = StreamDecoder(tok.decode)
    out = "".join(dec.push(i) for i in ids)
    assert out == "é ü 日本" and "\ufffd" not in out


def test_chat_template_gives_tensors(api_model, image):
    batch = api_model.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What is this?"}]}])
    assert batch["input_ids"].shape[0] == 1 and batch["images"].dim() == 4
    text = api_model.processor.apply_chat_template([{"role": "user", "content": "Hi"}], return_text=True)
    assert text == " User: Hi Assistant:"
    with pytest.raises(ValueError, match="one image"):
        api_model.processor.apply_chat_template([{"role": "user", "content": [
            {"type": "image", "image": image}, {"type": "image", "image": image}, {"type": "text", "text": "x"}]}])


def test_prepare_decodes_the_image_once(api_model, monkeypatch):
    from molmo.api import GenerationRequest
    from molmo.preprocess import processor as processor_module

    from .conftest import png_bytes

    calls = []
    real = processor_module.load_image
    monkeypatch.setattr(processor_module, "load_image", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    example, size = api_model.prepare(GenerationRequest(png_bytes((80, 60)), " User: Hi Assistant:", 4))
    assert len(calls) == 1 and size == (80, 60) and example["input_ids"][0] == api_model.tokenizer.bos_token_id
