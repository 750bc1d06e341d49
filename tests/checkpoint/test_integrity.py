"""Fault tests for weight files and training checkpoints: checksums, NaN/Inf, truncated and garbage files, a
`latest` pointer to nothing, and the keep-the-last-two cleanup. Every damaged file gives one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from molmo.checkpoint.integrity import CHECKSUM_FILE, IntegrityError
from molmo.checkpoint.io import load_molmo, save_molmo
from molmo.model.config import tiny_moe
from molmo.model.molmo import MolmoModel
from molmo.train import checkpointing


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = MolmoModel(tiny_moe())
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return save_molmo(model, tmp_path_factory.mktemp("w") / "ckpt")


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _one_line(e: pytest.ExceptionInfo, name: str) -> None:
    assert "\n" not in str(e.value) and name in str(e.value), str(e.value)


def test_checksum_is_written_and_a_bit_flip_is_refused(saved, tmp_path, monkeypatch):
    assert "model.safetensors" in json.loads((saved / CHECKSUM_FILE).read_text())["files"]
    load_molmo(saved)  # intact: loads
    bad = _copy(saved, tmp_path / "flip")
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[-100] ^= 0x10  # one bit inside the tensor data
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum mismatch") as e:
        load_molmo(bad)
    _one_line(e, "model.safetensors")
    monkeypatch.setenv("MOLMO_SKIP_CHECKSUM", "1")  # the flag to skip: loads (the values are still finite)
    load_molmo(bad)


def test_nan_or_inf_weights_are_an_error(saved, tmp_path):
    bad = _copy(saved, tmp_path / "nan")
    state = load_file(str(bad / "model.safetensors"))
    name = sorted(state)[3]
    state[name][0] = float("nan")
    save_file(state, str(bad / "model.safetensors"))
    (bad / CHECKSUM_FILE).unlink()  # as if written by a tool that does not write checksums
    with pytest.raises(IntegrityError, match="NaN or Inf") as e:
        load_molmo(bad)
    _one_line(e, name)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_truncated_and_garbage_weight_files_name_the_file(saved, tmp_path, damage):
    bad = _copy(saved, tmp_path / damage)
    file = bad / "model.safetensors"
    data = file.read_bytes()
    file.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x89garbage" * 1000, "empty": b""}[damage])
    (bad / CHECKSUM_FILE).unlink()  # the structural check alone must catch it
    with pytest.raises(IntegrityError) as e:
        load_molmo(bad)
    _one_line(e, "model.safetensors")


# ---------------------------------------------------------------- training checkpoints (torch DCP)
def _tiny_training():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 8)).sum().backward()
    opt.step()
    return model, opt


def test_keeps_the_last_two_and_latest_to_nowhere_falls_back(tmp_path):
    model, opt = _tiny_training()
    for step in (1, 2, 3):
        checkpointing.save(tmp_path, step, model, opt, rank=0)
    root = tmp_path / "checkpoints"
    assert [p.name for p in checkpointing.complete_checkpoints(root)] == ["step_0000002", "step_0000003"]
    (root / "latest").write_text("step_0000009")  # points nowhere
    with pytest.warns(UserWarning, match="newest complete checkpoint step_0000003"):
        assert checkpointing.resume(tmp_path, *_tiny_training()) == 3
    for p in checkpointing.complete_checkpoints(root):  # nothing complete left: a clear error, never step 1
        (p / ".metadata").unlink()
    with pytest.raises(IntegrityError, match="no complete checkpoint") as e:
        checkpointing.resume(tmp_path, *_tiny_training())
    _one_line(e, "latest")


def test_a_failed_save_never_deletes_the_only_good_checkpoint(tmp_path, monkeypatch):
    model, opt = _tiny_training()
    checkpointing.save(tmp_path, 1, model, opt, rank=0)

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(checkpointing.dcp, "save", crash)
    for step in (2, 3):
        with pytest.raises(OSError):
            checkpointing.save(tmp_path, step, model, opt, rank=0)
    assert checkpointing.latest(tmp_path).name == "step_0000001"
    assert checkpointing.resume(tmp_path, *_tiny_training()) == 1


@pytest.mark.parametrize("damage", ["truncated distcp", "garbage metadata", "bit flip"])
def test_damaged_dcp_checkpoint_names_the_file(tmp_path, damage):
    model, opt = _tiny_training()
    path = checkpointing.save(tmp_path, 1, model, opt, rank=0)
    distcp = sorted(path.glob("*.distcp"))[0]
    if damage == "truncated distcp":
        distcp.write_bytes(distcp.read_bytes()[:100])
        name = distcp.name
    elif damage == "garbage metadata":
        (path / ".metadata").write_bytes(b"not a pickle at all" * 10)
        name = ".metadata"
    else:
        data = bytearray(distcp.read_bytes())
        data[len(data) // 2] ^= 1
        distcp.write_bytes(bytes(data))
        name = distcp.name
    with pytest.raises(IntegrityError) as e:
        checkpointing.resume(tmp_path, *_tiny_training())
    _one_line(e, name)
