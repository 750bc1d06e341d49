"""The data root layout and its downloader. `molmo data download --root ROOT NAME…` fetches PixMo tables from the
Hugging Face hub into ROOT/pixmo/<name>/ and their images into ROOT/pixmo/images/; the released training
presets read every source from that one root (`--data_root=ROOT`):

    ROOT/pixmo/<name>/…            the hub dataset's files (parquet, any depth; `train-*` / `validation-*` splits)
    ROOT/pixmo/images/<sha256(url)> downloaded images of the URL-based sets
    ROOT/academic/<name>/…         academic tables + images (molmo.data.academic; placed by hand, see `SOURCES`)
    ROOT/benchmarks/…              evaluation data (molmo.eval.benchmarks)

Images (recipe-spec §2.1) are saved as `<out>/<sha256(url)>` (the name the PixMo readers look for), written
atomically (temporary file + rename), checked against the row's `image_sha256` when there is one, retried with
exponential backoff on network errors and 5xx/429 answers. Files already present are skipped, so an
interrupted run simply restarts. What still failed is listed in `<out>/missing.jsonl`.

    molmo data download --root /data pixmo-cap pixmo-points pixmo-points-eval      # tables + images
    report = download_images(urls_from_tables(["pixmo-points/train.parquet"]), "images/", workers=16)
    molmo data download pixmo-points/train.parquet --out images/ --workers 16      # images of local tables
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from molmo.data.pixmo import table_files, url_hash
from molmo.data.tables import TableSet, iter_strings

USER_AGENT = "molmo-data-downloader/1.0"
MISSING_MANIFEST = "missing.jsonl"
PIXMO_IMAGES = "pixmo/images"
# PixMo set (reader name) -> (hub dataset, URL-based: images must be downloaded)
PIXMO_HUB = {
    "cap": ("allenai/pixmo-cap", True), "ask_model_anything": ("allenai/pixmo-ask-model-anything", True),
    "cap_qa": ("allenai/pixmo-cap-qa", True), "points": ("allenai/pixmo-points", True),
    "points_eval": ("allenai/pixmo-points-eval", True), "point_explanations": ("allenai/pixmo-point-explanations", True),
    "docs": ("allenai/pixmo-docs", False), "count": ("allenai/pixmo-count", True), "clocks": ("allenai/pixmo-clocks", False),
}
# Academic sets: where to get them (they go to ROOT/academic/<name>/ in the columns molmo.data.academic reads).
ACADEMIC_SOURCES = {
    "vqa2": "VQA v2 (visualqa.org) with COCO 2014 images", "text_vqa": "hub facebook/textvqa",
    "okvqa": "hub HuggingFaceM4/OK-VQA", "chart_qa": "hub HuggingFaceM4/ChartQA", "doc_qa": "hub HuggingFaceM4/DocumentVQA",
    "info_qa": "InfographicVQA (rrc.cvc.uab.es, manual)", "ai2d": "AI2D (allenai)", "a_okvqa_mc": "hub HuggingFaceM4/A-OKVQA",
    "a_okvqa_da": "hub HuggingFaceM4/A-OKVQA", "android_control": "AndroidControl (google-research, tfrecords)",
    "science_qa": "hub derek-thomas/ScienceQA", "tabmwp": "TabMWP (lupantech)", "st_qa": "ST-VQA task 3 (manual)",
    "tally_qa": "TallyQA (manoja328) with COCO / Visual Genome images", "dv_qa": "DVQA (kushalkafle)",
    "figure_qa": "FigureQA (Maluuba)", "plot_qa": "PlotQA (NiteshMethani)",
}


def pixmo_dir(root: str | Path, name: str) -> Path:
    return Path(root) / "pixmo" / name


def academic_dir(root: str | Path, name: str) -> Path:
    return Path(root) / "academic" / name


def fetch_hint(kind: str, name: str, root: str | Path) -> str:
    """How a user gets a missing source into the layout (a command for PixMo, a place and a source otherwise)."""
    if kind == "pixmo" and name in PIXMO_HUB:
        return f"molmo data download --root {root} pixmo-{name.replace('_', '-')}"
    if kind == "academic":
        return f"put its tables and images under {academic_dir(root, name)} (source: {ACADEMIC_SOURCES.get(name, '?')})"
    return "check the source's path"


def download_pixmo(name: str, root: str | Path, cfg: "DownloadConfig | None" = None, progress: bool = True,
                   snapshot=None) -> "DownloadReport | None":
    """Tables of one PixMo set from the hub into ROOT/pixmo/<name>/, then (URL-based sets) its images into
    ROOT/pixmo/images/. `snapshot` replaces huggingface_hub.snapshot_download (tests)."""
    key = name.lower().replace("-", "_").removeprefix("pixmo_")
    if key not in PIXMO_HUB:
        raise ValueError(f"unknown PixMo set {name!r}; expected one of {sorted('pixmo-' + k.replace('_', '-') for k in PIXMO_HUB)}")
    repo, url_based = PIXMO_HUB[key]
    if snapshot is None:
        from huggingface_hub import snapshot_download as snapshot
    target = pixmo_dir(root, key)
    snapshot(repo_id=repo, repo_type="dataset", local_dir=str(target), allow_patterns=["*.parquet", "*.json", "*.jsonl"])
    if not url_based:
        return None
    return download_images(urls_from_tables([target]), Path(root) / PIXMO_IMAGES, cfg or DownloadConfig(),
                           progress=progress)


@dataclass(frozen=True)
class DownloadConfig:
    retries: int = 3  # attempts after the first one
    timeout: float = 5.0  # seconds per request (released loader: 5 s, 3 retries)
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    workers: int = 8
    max_bytes: int = 64 * 1024 * 1024


@dataclass
class DownloadReport:
    downloaded: int = 0
    skipped: int = 0  # already present
    failed: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class _Permanent(Exception):
    """A failure that retrying cannot fix (4xx, hash mismatch, too large)."""


def urls_from_tables(paths: Iterable[str | Path]) -> list[tuple[str, str | None]]:
    """Unique (image_url, image_sha256 or None) pairs of PixMo tables, in first-seen order (read column by
    column from the memory-mapped tables, not row by row)."""
    seen: dict[str, str | None] = {}
    for path in paths:
        rows = TableSet.open(table_files(path))
        for f in rows.files:
            if "image_url" not in f.columns:
                raise ValueError(f"{f.path}: no 'image_url' column to download")
            urls, hashes = f.column("image_url"), f.column("image_sha256")
            for i, (url, sha) in enumerate(zip(iter_strings(urls), iter_strings(hashes))):
                if not isinstance(url, str) or not url:
                    raise ValueError(f"{f.path}: row {i} has no 'image_url' to download")
                if url not in seen or seen[url] is None:
                    seen[url] = sha or None
    return list(seen.items())


def _fetch(url: str, cfg: DownloadConfig) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout) as response:
            data = response.read(cfg.max_bytes + 1)
    except urllib.error.HTTPError as e:
        if 400 <= e.code < 500 and e.code not in (408, 429):
            raise _Permanent(f"HTTP {e.code}") from e
        raise
    if len(data) > cfg.max_bytes:
        raise _Permanent(f"larger than {cfg.max_bytes} bytes")
    return data


def download_one(url: str, sha256: str | None, out: Path, cfg: DownloadConfig) -> tuple[str, str | None]:
    """("downloaded" | "skipped" | "failed", reason). Never raises for network problems."""
    target = out / url_hash(url)
    if target.exists():
        return "skipped", None
    reason = "unknown"
    for attempt in range(cfg.retries + 1):
        if attempt:
            time.sleep(cfg.backoff * 2 ** (attempt - 1))
        try:
            data = _fetch(url, cfg)
            if sha256 and hashlib.sha256(data).hexdigest() != sha256.lower():
                raise _Permanent("sha256 mismatch")
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)  # readers never see a half-written image
            return "downloaded", None
        except _Permanent as e:
            return "failed", str(e)
        except (urllib.error.URLError, OSError, ValueError) as e:  # network errors, timeouts, 5xx, bad URLs
            reason = f"{e.__class__.__name__}: {getattr(e, 'reason', e)}"
    return "failed", f"{reason} (after {cfg.retries + 1} attempts)"


def download_images(items: Iterable[tuple[str, str | None]], out: str | Path, cfg: DownloadConfig = DownloadConfig(),
                    progress: bool = True) -> DownloadReport:
    """Download every (url, sha256) into out/; rewrites out/missing.jsonl with this run's failures."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = list(items)
    report = DownloadReport()
    with ThreadPoolExecutor(max(1, cfg.workers)) as pool, \
            tqdm(total=len(items), desc="download", unit="img", disable=not progress) as bar:
        results = pool.map(lambda it: download_one(it[0], it[1], out, cfg), items)
        for (url, sha), (status, reason) in zip(items, results):
            if status == "downloaded":
                report.downloaded += 1
            elif status == "skipped":
                report.skipped += 1
            else:
                report.failed.append({"url": url, "sha256": sha, "reason": reason})
            bar.update(1)
    tmp = out / f".{MISSING_MANIFEST}.tmp"
    tmp.write_text("".join(json.dumps(f) + "\n" for f in report.failed))
    os.replace(tmp, out / MISSING_MANIFEST)
    return report


__all__ = ["DownloadConfig", "DownloadReport", "download_images", "download_one", "urls_from_tables"]
