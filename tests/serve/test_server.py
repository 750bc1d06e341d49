"""The OpenAI-compatible server: answers, streaming, the `molmo` field, batching, limits, auth, the bad-input
set, and the real `openai` client against uvicorn on a loopback port."""

from __future__ import annotations

import base64
import io
import json
import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from molmo.api import GenerationRequest
from molmo.serve.batcher import Batcher, BatcherSettings, QueueFullError
from molmo.serve.server import BackgroundServer, ServerSettings, create_app

from .conftest import png_bytes

POINTS = ' <points x1="10.0" y1="20.0" x2="80.5" y2="90.0" alt="cats">cats</points>'


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def chat(url: str | None = None, text: str = "Point to the cats.", **extra) -> dict:
    content = [{"type": "text", "text": text}]
    if url is not None:
        content.insert(0, {"type": "image_url", "image_url": {"url": url}})
    return {"model": "ckpt", "messages": [{"role": "user", "content": content}], "max_tokens": 6, **extra}


@pytest.fixture
def client(api_model):
    settings = ServerSettings(max_body_bytes=400_000, max_image_pixels=1_000_000, max_tokens=64)
    with TestClient(create_app(api_model, settings), base_url="http://127.0.0.1") as c:
        yield c


def test_completion_has_openai_shape_and_molmo_field(client, api_model, scripted):
    scripted(POINTS, api_model.tokenizer)
    r = client.post("/v1/chat/completions", json=chat(data_url(png_bytes()), max_tokens=60))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "ckpt"
    assert body["choices"][0]["message"]["content"].startswith("<points")
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["molmo"]["points"] == [{"x": 8.0, "y": 12.0, "label": "cats"}, {"x": 64.4, "y": 54.0, "label": "cats"}]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_streaming_sends_deltas_then_points(client, api_model, scripted):
    scripted(" Counting the dots shows a total of 3.", api_model.tokenizer)
    r = client.post("/v1/chat/completions", json=chat(data_url(png_bytes()), stream=True, max_tokens=60, stop=[" total"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in r.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Counting the dots shows a"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["molmo"]["count"] is None


def test_text_only_and_models_and_health(client):
    assert client.get("/v1/models").json()["data"][0]["id"] == "ckpt"
    r = client.post("/v1/chat/completions", json=chat(None, "Hello", max_tokens=3))
    assert r.status_code == 200 and r.json()["molmo"]["image_size"] is None
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["requests"] >= 1
    assert "<canvas" in client.get("/").text


def _png(size) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size).save(buf, format="PNG")
    return buf.getvalue()


BAD_INPUTS = {
    "corrupt image": (lambda: chat(data_url(b"GIF8" + b"garbage" * 20)), 400, "not a readable image"),
    "truncated image": (lambda: chat(data_url(png_bytes((80, 60))[:60])), 400, "truncated or corrupt"),
    "zero-byte image": (lambda: chat("data:image/png;base64,"), 400, "empty"),
    "wrong image content type": (lambda: chat(data_url(b"hello", "text/plain")), 415, "unsupported content type"),
    "not base64": (lambda: chat("data:image/png;base64,@@@@"), 400, "base64"),
    "giant image": (lambda: chat(data_url(_png((1200, 1000)))), 400, "over the limit"),
    "remote url without flag": (lambda: chat("https://example.com/a.png"), 400, "remote image URLs are disabled"),
    "two images": (lambda: {"model": "ckpt", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(png_bytes())}},
        {"type": "image_url", "image_url": {"url": data_url(png_bytes())}}, {"type": "text", "text": "x"}]}]},
        400, "one image"),
    "missing messages": (lambda: {"model": "ckpt"}, 400, "missing required field 'messages'"),
    "message without role": (lambda: {"messages": [{"content": "hi"}]}, 400, "role"),
    "last message not user": (lambda: {"messages": [{"role": "assistant", "content": "hi"}]}, 400, "last message"),
    "too many tokens": (lambda: chat(None, "hi", max_tokens=100_000), 400, "at most 64"),
    "zero tokens": (lambda: chat(None, "hi", max_tokens=0), 400, "positive integer"),
    "bad temperature": (lambda: chat(None, "hi", temperature=-1), 400, "'temperature' must be between"),
    "unknown model": (lambda: {**chat(None, "hi"), "model": "gpt-17"}, 404, "does not exist"),
    "prompt too long": (lambda: chat(None, "word " * 2000, max_tokens=4), 400, "tokens but the limit is"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(client, case):
    make, status, message = BAD_INPUTS[case]
    r = client.post("/v1/chat/completions", json=make())
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert message in err["message"] and err["type"] and err["code"]
    assert client.post("/v1/chat/completions", json=chat(data_url(png_bytes()), max_tokens=2)).status_code == 200


def test_raw_body_errors(client):
    post = lambda **kw: client.post("/v1/chat/completions", **kw)  # noqa: E731
    r = post(content=b'{"messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]["message"]
    r = post(content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = post(content=b"[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "object" in r.json()["error"]["message"]
    r = post(content=b"x" * 500_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit" in r.json()["error"]["message"]
    assert client.get("/v1/nothing").status_code == 404


def test_queue_full_is_429(client, monkeypatch):
    def full(*a, **k):
        raise QueueFullError("64 requests are already waiting (limit 64); retry later")

    monkeypatch.setattr(client.app.state.batcher, "submit", full)
    r = client.post("/v1/chat/completions", json=chat(None, "hi"))
    assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"


def test_generation_failure_is_a_json_500_and_serving_goes_on(client, api_model, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(api_model.model, "forward", broken)
    r = client.post("/v1/chat/completions", json=chat(None, "hi"))
    assert r.status_code == 500 and "out of memory" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json=chat(None, "hi", stream=True))
    assert r.status_code == 200 and "generation_failed" in r.text and r.text.rstrip().endswith("[DONE]")
    monkeypatch.undo()
    assert client.post("/v1/chat/completions", json=chat(None, "hi", max_tokens=2)).status_code == 200


def test_api_key_is_required_when_set(api_model):
    with TestClient(create_app(api_model, ServerSettings(api_key="s3cret"))) as c:  # a key: any Host
        r = c.post("/v1/chat/completions", json=chat(None, "hi"))
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = c.post("/v1/chat/completions", json=chat(None, "hi", max_tokens=2),
                   headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200
        assert c.get("/health").status_code == 200  # health and the page stay open


def test_batcher_groups_concurrent_requests(api_model, image):
    reqs = [GenerationRequest(image, f" User: question {i}? Assistant:", 4 + i) for i in range(4)]
    prepared = [api_model.prepare(r) for r in reqs]
    alone = [api_model.generate_requests([r], prepared=[p])[0] for r, p in zip(reqs, prepared)]
    batcher = Batcher(api_model, BatcherSettings(max_batch_size=4, window_s=0.5, max_queue=4))
    futures = [batcher.submit(r, p) for r, p in zip(reqs, prepared)]
    with pytest.raises(QueueFullError, match="limit 4"):
        batcher.submit(reqs[0], prepared[0])
    batcher.start()
    answers = [f.future.result(timeout=60) for f in futures]
    batcher.close()
    assert batcher.stats.batches == 1 and batcher.stats.largest_batch == 4
    assert [a.text for a in answers] == [a.text for a in alone]
    assert [a.usage.completion_tokens for a in answers] == [a.usage.completion_tokens for a in alone]


def test_openai_client_against_uvicorn(api_model):
    openai = pytest.importorskip("openai")
    app = create_app(api_model, ServerSettings(api_key="k", max_tokens=32, batch_window_s=0.05))
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(png_bytes())}},
                                                 {"type": "text", "text": "What is this?"}]}]
        resp = client.chat.completions.create(model="ckpt", messages=messages, max_tokens=5)
        assert resp.choices[0].finish_reason in ("stop", "length")
        assert resp.model_extra["molmo"]["image_size"] == [80, 60]
        stream = client.chat.completions.create(model="ckpt", messages=messages, max_tokens=5, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream)
        assert streamed.strip() == resp.choices[0].message.content  # greedy: same answer either way
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            client.chat.completions.create(model="nope", messages=messages)
        # concurrent clients are batched together
        results = []
        threads = [threading.Thread(target=lambda: results.append(httpx.post(
            server.url + "/v1/chat/completions", json=chat(data_url(png_bytes()), max_tokens=4),
            headers={"Authorization": "Bearer k"}, timeout=60).status_code)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [200] * 6
        health = httpx.get(server.url + "/health").json()
        assert health["largest_batch"] > 1


def test_served_model_names_and_seed(api_model):
    settings = ServerSettings(served_model_names=("molmo", "gpt-4o"), max_tokens=16)
    with TestClient(create_app(api_model, settings), base_url="http://127.0.0.1") as c:
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["ckpt", "molmo", "gpt-4o"]
        r = c.post("/v1/chat/completions", json={**chat(None, "hi"), "model": "gpt-4o"})
        assert r.status_code == 200 and r.json()["model"] == "gpt-4o"
        sampled = [c.post("/v1/chat/completions", json=chat(None, "Describe this image.", max_tokens=12,
                                                            temperature=1.0, seed=s)).json()["choices"][0]
                   ["message"]["content"] for s in (3, 3, 4)]
        assert sampled[0] == sampled[1] != sampled[2]
