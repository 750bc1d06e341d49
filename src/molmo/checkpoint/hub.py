"""Resolve a model name to a local checkpoint folder: an existing path is used as is, an `org/name` Hub id is
fetched through `huggingface_hub` into its cache (only the files the loader reads) and the snapshot folder is
returned.

    from molmo.checkpoint.hub import resolve_model
    path = resolve_model("allenai/Molmo-7B-D-0924", revision="main")   # downloads config, shards, tokenizer...
    path = resolve_model("runs/finetune/model")                         # a local folder comes back unchanged

Environment (read at call time): `HF_ENDPOINT` (a mirror or a test server), `HF_HUB_OFFLINE=1` (use the cache
only), `HF_HUB_CACHE` / `HF_HOME` (where snapshots live), `HF_TOKEN` (gated or private repositories). The
progress bar is huggingface_hub's own (`HF_HUB_DISABLE_PROGRESS_BARS=1` silences it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# What `load_molmo`, `MolmoTokenizer.from_dir` and the pre-processor read; nothing else is downloaded.
LOADER_FILES = (
    "config.json",
    "model.safetensors",
    "model-*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "generation_config.json",
)
# A Hub repository id: `org/name` (letters, digits, '-', '_', '.'), never a path that exists locally.
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class HubError(FileNotFoundError):
    """A Hub id could not be resolved (unknown id, unknown revision, offline without a cached copy)."""


def is_hub_id(name: str | os.PathLike) -> bool:
    """True for `org/name` strings that do not name an existing local path."""
    text = os.fspath(name)
    return bool(_REPO_ID.match(text)) and not Path(text).exists() and ".." not in text


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", os.environ.get("TRANSFORMERS_OFFLINE", "")).strip().lower() in (
        "1", "true", "yes", "on")


def resolve_model(name: str | os.PathLike, revision: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                  local_files_only: bool | None = None, files: tuple[str, ...] = LOADER_FILES,
                  required: str = "config.json") -> Path:
    """A local folder for `name`: the path itself, or the Hub snapshot of `name` at `revision`.

    `files`: the glob patterns to fetch (default: what the loader reads; `molmo export --base` asks for the
    processor and remote-code files instead of the weights); `required`: the file that must be there."""
    if not is_hub_id(name):
        if revision is not None:
            raise HubError(f"--revision {revision!r} applies to Hub ids, but {os.fspath(name)!r} is a local path")
        return Path(name)
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                            RevisionNotFoundError)
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise HubError(f"{name}: loading by Hub id needs huggingface_hub (pip install huggingface_hub)") from e
    repo_id = os.fspath(name)
    at = f" at revision {revision!r}" if revision else ""
    offline = _offline() if local_files_only is None else local_files_only
    try:
        folder = snapshot_download(
            repo_id, revision=revision,
            cache_dir=os.fspath(cache_dir) if cache_dir else os.environ.get("HF_HUB_CACHE") or None,
            local_files_only=offline, allow_patterns=list(files),
            token=os.environ.get("HF_TOKEN") or None, endpoint=os.environ.get("HF_ENDPOINT") or None)
    except RevisionNotFoundError as e:
        raise HubError(f"{repo_id}: revision {revision!r} does not exist on the Hub (a branch, tag or commit "
                       f"hash of the repository)") from e
    except GatedRepoError as e:
        raise HubError(f"{repo_id}: the repository is gated; accept its terms on the Hub and set HF_TOKEN") from e
    except RepositoryNotFoundError as e:
        raise HubError(f"{repo_id}: no such model on the Hub (or it is private: set HF_TOKEN); a local folder "
                       f"of that name does not exist either") from e
    except LocalEntryNotFoundError as e:
        why = "offline mode (HF_HUB_OFFLINE=1)" if offline else "the Hub could not be reached"
        raise HubError(f"{repo_id}{at}: no local folder of that name, and not in the local Hub cache while {why}; "
                       f"run once online to download it") from e
    except OSError as e:  # connection problems, unwritable cache, ...
        raise HubError(f"{repo_id}{at}: download failed: {e}") from e
    path = Path(folder)
    if not (path / required).is_file():
        raise HubError(f"{repo_id}{at}: the repository has no {required}")
    return path
