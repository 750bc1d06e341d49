"""Caption F1: statement splitting, the exact judge, and the chat judge against a fake local
OpenAI-compatible server. Run: python -m pytest tests/eval/test_caption_f1.py -q"""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from molmo.eval.caption_f1 import ChatJudge, ExactJudge, JudgeError, caption_f1, split_statements


def test_split_statements_sentences_and_clauses():
    s = split_statements("There is a red circle, and the background is white. It is big!\nA clock.")
    assert s == ["There is a red circle", "the background is white", "It is big", "A clock"]


def test_exact_judge_precision_recall():
    facts = ["There is a red circle.", "The background is white.", "There is a blue square."]
    r = caption_f1("There is a red circle. The background is WHITE. It is huge.", facts, ExactJudge())
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 / 3)
    assert caption_f1("", facts, ExactJudge()) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


class _FakeChat(BaseHTTPRequestHandler):
    """Says a statement is supported iff its text appears in the references (case-insensitive)."""
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeChat.requests.append((self.path, self.headers.get("Authorization"), body))
        user = body["messages"][-1]["content"]
        refs, statements = user.split("\n\nStatements:\n")
        verdicts = [line.split(". ", 1)[1].lower() in refs.lower() for line in statements.splitlines()]
        if "BROKEN" in user:
            verdicts = verdicts[:-1]
        reply = {"choices": [{"message": {"role": "assistant", "content": "Verdicts: " + json.dumps(verdicts)}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_server():
    server = HTTPServer(("127.0.0.1", 0), _FakeChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_chat_judge_against_fake_server(fake_server):
    _FakeChat.requests.clear()
    judge = ChatJudge(fake_server, "judge-model", api_key="k")
    r = caption_f1("A red circle. A green cat.", ["A red circle on white. A dog"], judge)
    assert r["precision"] == pytest.approx(0.5)  # "A red circle" in refs, "A green cat" not
    assert r["recall"] == pytest.approx(0.0)  # neither "A red circle on white" nor "A dog" is in the caption
    path, auth, body = _FakeChat.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer k" and body["model"] == "judge-model"


def test_chat_judge_rejects_wrong_verdict_count(fake_server):
    with pytest.raises(JudgeError, match="JSON list of 2"):
        ChatJudge(fake_server, "m").supported(["a", "b"], ["BROKEN"])


def test_chat_judge_bad_url_and_unreachable():
    with pytest.raises(ValueError, match="http"):
        ChatJudge("localhost:1", "m")
    with pytest.raises(JudgeError, match="failed"):
        ChatJudge("http://127.0.0.1:9", "m", timeout=2).supported(["a"], ["b"])
