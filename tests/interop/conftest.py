"""Fixtures for the interoperability tests: a small checkpoint of ours with a BPE tokenizer, and a fake Hugging
Face Hub on 127.0.0.1 that serves folders in the Hub's file layout (the endpoints huggingface_hub calls:
model info at a revision, the recursive tree listing, HEAD/GET of `resolve/{rev}/{file}`)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch

from molmo.checkpoint.io import save_molmo
from molmo.model.config import preset
from molmo.model.molmo import MolmoModel
from molmo.text.tokenizer import train_bpe_tokenizer

TEXTS = [" User: Point to the red circle. Assistant:", ' <point x="25.0" y="50.0" alt="red">red</point>',
         " User: How many cats are there? Assistant: What is this? Describe this image. There are 3."]


def make_checkpoint(path: Path, seed: int = 0) -> Path:
    """A tiny-qwen2-shaped model of ours with a tokenizer and a 112-px pre-processor (loads with from_pretrained)."""
    path.mkdir(parents=True, exist_ok=True)
    tok = train_bpe_tokenizer(TEXTS * 20, vocab_size=300)
    ids = tok.image_token_ids
    special = {"<im_start>": ids.start, "<im_end>": ids.end, "<im_patch>": ids.patch, "<im_col>": ids.col,
               "<|image|>": ids.image}
    config = preset("tiny-qwen2").replace(special_token_ids=special, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    model = MolmoModel(config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    tok.save(path / "src")
    pre = {"base_image_input_size": [112, 112], "image_patch_size": 14, "max_crops": 2, "overlap_margins": [2, 2]}
    (path / "src" / "preprocessor_config.json").write_text(json.dumps(pre))
    return save_molmo(model, path / "ckpt", extra_files={"tokenizer.json": path / "src" / "tokenizer.json",
                                                         "preprocessor_config.json": path / "src" / "preprocessor_config.json"})


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("tiny-interop"))


class FakeHub:
    """`repos[repo_id][revision] = folder`; each revision gets a stable 40-hex commit id. `fetched` lists the
    files that were downloaded (GET of resolve/…)."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Path]] = {}
        self.fetched: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, repo_id: str, folder: Path, revision: str = "main") -> str:
        self.repos.setdefault(repo_id, {})[revision] = Path(folder)
        return self.commit(repo_id, revision)

    @staticmethod
    def commit(repo_id: str, revision: str) -> str:
        return hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()

    def _lookup(self, repo_id: str, rev: str) -> tuple[str | None, Path | None, str | None]:
        """(error code, folder, commit)."""
        revs = self.repos.get(repo_id)
        if revs is None:
            return "RepoNotFound", None, None
        for name, folder in revs.items():
            if rev in (name, self.commit(repo_id, name)):
                return None, folder, self.commit(repo_id, name)
        return "RevisionNotFound", None, None

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _error(self, code: str) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _json(self, obj) -> None:
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _files(self, folder: Path) -> list[Path]:
                return sorted(p for p in folder.rglob("*") if p.is_file())

            def _route(self, head: bool) -> None:
                parts = [unquote(p) for p in urlparse(self.path).path.strip("/").split("/")]
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
                    repo_id, kind, rev = f"{parts[2]}/{parts[3]}", parts[4], parts[5]
                    err, folder, sha = hub._lookup(repo_id, rev)
                    if err:
                        return self._error(err)
                    files = self._files(folder)
                    if kind == "revision":
                        return self._json({"id": repo_id, "sha": sha, "private": False,
                                           "siblings": [{"rfilename": str(f.relative_to(folder))} for f in files]})
                    return self._json([{"type": "file", "path": str(f.relative_to(folder)), "size": f.stat().st_size,
                                        "oid": hashlib.sha1(f.read_bytes()).hexdigest()} for f in files])
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo_id, rev, rel = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
                    err, folder, sha = hub._lookup(repo_id, rev)
                    if err:
                        return self._error(err)
                    f = folder / rel
                    if not f.is_file():
                        return self._error("EntryNotFound")
                    data = f.read_bytes()
                    self.send_response(200)
                    self.send_header("X-Repo-Commit", sha)
                    self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if not head:
                        hub.fetched.append(rel)
                        self.wfile.write(data)
                    return None
                return self._error("RepoNotFound")

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A running fake Hub with HF_ENDPOINT pointed at it and a fresh cache; yields the FakeHub."""
    hub = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield hub
    hub.close()
