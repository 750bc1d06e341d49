"""`molmo data` sub-commands, the gallery page and the downloader (against a local http.server)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from molmo.cli import main
from molmo.data.download import DownloadConfig, download_images, urls_from_tables
from molmo.data.gallery import build_gallery
from molmo.data.pixmo import read_pixmo, url_hash


def write_own_data(tmp_path, lines, size=(100, 80)):
    Image.new("RGB", size, (250, 250, 250)).save(tmp_path / "a.png")
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


# ------------------------------------------------------------------------------------------------ validate
def test_validate_prints_every_problem_and_exits_1(tmp_path, capsys):
    path = write_own_data(tmp_path, [
        {"image": "a.png", "question": "q?", "answer": "a"},
        {"image": "a.png", "task": "point", "lable": "x", "points": []},
        {"image": "b.png", "question": "q?", "answer": "a"},
    ])
    assert main(["data", "validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith(f"{path}:2: unknown field(s) ['lable']")
    assert out[1] == f"{path}:3: image file 'b.png' not found"
    good = write_own_data(tmp_path, [{"image": "a.png", "question": "q?", "answer": "a"}])
    assert main(["data", "validate", str(good)]) == 0


# ------------------------------------------------------------------------------------------------ gallery
def test_show_embeds_thumbnails_with_drawn_points(tmp_path):
    write_own_data(tmp_path, [
        {"image": "a.png", "task": "point", "label": "dot", "points": [[10, 10], [90, 70]]},
        {"image": "a.png", "question": "What is <this>?", "answer": "a & b"},
    ])
    out = tmp_path / "page.html"
    assert main(["data", "show", str(tmp_path), "--out", str(out), "--n", "5"]) == 0
    page = out.read_text()
    assert "What is &lt;this&gt;?" in page and "a &amp; b" in page  # escaped
    assert '&lt;points x1="10.0" y1="12.5" x2="90.0" y2="87.5" alt="dot"&gt;dot&lt;/points&gt;' in page
    thumbs = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(thumbs) == 1
    thumb = Image.open(io.BytesIO(base64.b64decode(thumbs[0]))).convert("RGB")
    assert thumb.size == (100, 80)
    r, g, b = thumb.getpixel((10, 10))  # a coloured marker where the first point is
    assert max(r, g, b) - min(r, g, b) > 60


def test_gallery_n_limits_and_reports_bad_input(tmp_path):
    Image.new("RGB", (20, 20)).save(tmp_path / "b.png")
    path = write_own_data(tmp_path, [{"image": "a.png", "question": "q", "answer": "1"},
                                     {"image": "b.png", "question": "q", "answer": "2"}])
    page = build_gallery(path, tmp_path / "g.html", n=1).read_text()
    assert page.count('class="card"') == 1
    with pytest.raises(FileNotFoundError, match="data.jsonl"):
        build_gallery(tmp_path / "empty_dir_missing", tmp_path / "x.html")
    assert main(["data", "show", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x.html")]) == 1


# ------------------------------------------------------------------------------------------------ generate
@pytest.mark.parametrize("kind", ["points", "clocks"])
def test_generate_writes_valid_own_data(tmp_path, kind, capsys):
    pytest.importorskip(f"molmo.data.generators.{'scenes' if kind == 'points' else kind}")
    out = tmp_path / kind
    rc = main(["data", "generate", kind, "--n", "2", "--out", str(out), "--seed", "1", "--workers", "1",
               "--difficulty", "easy"])
    assert rc == 0
    assert main(["data", "validate", str(out / "data.jsonl")]) == 0
    assert len(list((out / "images").glob("*.png"))) == 2


def test_generate_rejects_unknown_kind_and_bad_difficulty(tmp_path, capsys):
    assert main(["data", "generate", "nope", "--n", "1", "--out", str(tmp_path / "x")]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    pytest.importorskip("molmo.data.generators.scenes")
    assert main(["data", "generate", "points", "--n", "1", "--out", str(tmp_path / "y"), "--workers", "1",
                 "--difficulty", "impossible"]) == 2


def test_mixture_command_prints_rates(tmp_path, capsys):
    sizes = tmp_path / "sizes.json"
    sizes.write_text(json.dumps({"captions": 100, "docs": 100, "clocks": 100, "points": 100}))
    assert main(["data", "mixture", "synthetic", "--sizes", str(sizes)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"pointing\s+points\s+35\.00 %", out)
    assert re.search(r"aux\s+docs\s+25\.00 %", out)


# ------------------------------------------------------------------------------------------------ download
class _Handler(BaseHTTPRequestHandler):
    files: dict = {}
    failures: dict = {}  # path -> number of 503 answers before success
    hits: dict = {}

    def do_GET(self):  # noqa: N802 - http.server API
        type(self).hits[self.path] = type(self).hits.get(self.path, 0) + 1
        if type(self).failures.get(self.path, 0) > 0:
            type(self).failures[self.path] -= 1
            self.send_error(503)
            return
        if self.path not in type(self).files:
            self.send_error(404)
            return
        body = type(self).files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.failures, _Handler.hits = {}, {}, {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", _Handler
    httpd.shutdown()
    httpd.server_close()


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, format="PNG")
    return buf.getvalue()


def test_download_retries_checks_hash_writes_manifest_and_resumes(tmp_path, server):
    base, handler = server
    good, flaky, bad_hash = _png((255, 0, 0)), _png((0, 255, 0)), _png((0, 0, 255))
    handler.files = {"/good.png": good, "/flaky.png": flaky, "/bad.png": bad_hash}
    handler.failures = {"/flaky.png": 2}
    items = [(f"{base}/good.png", hashlib.sha256(good).hexdigest()), (f"{base}/flaky.png", None),
             (f"{base}/bad.png", "0" * 64), (f"{base}/gone.png", None)]
    cfg = DownloadConfig(retries=2, backoff=0.01, timeout=5, workers=2)
    out = tmp_path / "images"
    report = download_images(items, out, cfg, progress=False)
    assert report.downloaded == 2 and not report.ok
    assert (out / url_hash(f"{base}/good.png")).read_bytes() == good
    assert (out / url_hash(f"{base}/flaky.png")).read_bytes() == flaky
    assert handler.hits["/flaky.png"] == 3
    missing = [json.loads(line) for line in (out / "missing.jsonl").read_text().splitlines()]
    assert {m["url"].rsplit("/", 1)[1]: m["reason"] for m in missing} == {"bad.png": "sha256 mismatch",
                                                                         "gone.png": "HTTP 404"}
    assert handler.hits["/gone.png"] == 1  # a 404 is not retried
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    # Resume: present files are skipped without a request.
    report = download_images(items[:2], out, cfg, progress=False)
    assert report.skipped == 2 and report.ok and handler.hits["/good.png"] == 1
    assert (out / "missing.jsonl").read_text() == ""


def test_download_command_feeds_the_readers(tmp_path, server):
    base, handler = server
    handler.files = {"/1.png": _png((1, 2, 3))}
    table = tmp_path / "ama.jsonl"
    rows = [{"image_url": f"{base}/1.png", "image_sha256": "", "question": f"q{i}", "answer": "a"} for i in range(2)]
    rows.append({"image_url": f"{base}/2.png", "image_sha256": "", "question": "q", "answer": "a"})
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert urls_from_tables([table]) == [(f"{base}/1.png", None), (f"{base}/2.png", None)]
    out = tmp_path / "img"
    rc = main(["data", "download", str(table), "--out", str(out), "--retries", "0", "--workers", "1"])
    assert rc == 1  # 2.png failed
    examples = read_pixmo("ask_model_anything", table, image_dir=out)
    assert len(examples) == 1 and len(examples[0].annotations) == 2 and examples[0].image_size == (40, 30)


def test_download_into_a_data_root_lays_out_what_the_presets_read(tmp_path, server):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from molmo.data.download import download_pixmo
    from molmo.train import presets
    from molmo.train.batches import missing_data, open_source
    base, handler = server
    handler.files = {f"/{i}.png": _png((i, 2, 3)) for i in range(3)}
    calls = []

    def snapshot(repo_id, repo_type, local_dir, allow_patterns):  # stands in for huggingface_hub
        calls.append((repo_id, repo_type))
        rows = [{"image_url": f"{base}/{i}.png", "caption": f"c{i}", "transcripts": ["t"]} for i in range(3)]
        (tmp_path / "root/pixmo/cap/data").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), f"{local_dir}/data/train-00000-of-00001.parquet")

    cfg = DownloadConfig(retries=0, workers=1)
    report = download_pixmo("pixmo-cap", tmp_path / "root", cfg, progress=False, snapshot=snapshot)
    assert calls == [("allenai/pixmo-cap", "dataset")] and report.downloaded == 3
    assert sorted(p.name for p in (tmp_path / "root/pixmo/images").iterdir()) == \
        sorted([url_hash(f"{base}/{i}.png") for i in range(3)] + ["missing.jsonl"])
    data = dataclasses.replace(presets.released_pretrain("7b-d").data, root=str(tmp_path / "root"))
    assert missing_data(data) == []  # the pre-training preset finds its tables and images there
    everything = dataclasses.replace(data.sources[0], options={"transcripts": True})  # no held-out split
    assert len(open_source(everything, data.root)) == 3
    with pytest.raises(ValueError, match="unknown PixMo set"):
        download_pixmo("pixmo-nope", tmp_path / "root", cfg, snapshot=snapshot)
