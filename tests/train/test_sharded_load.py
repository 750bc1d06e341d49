"""FSDP2 from the meta device: two CPU ranks (gloo) each read only their own rows of a checkpoint, the
gathered weights equal a one-process load, and bf16 runs through the MixedPrecisionPolicy (bf16 compute)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from molmo.checkpoint.io import load_molmo

SCRIPT = """
import sys
from pathlib import Path
import torch, torch.distributed as dist
from molmo.checkpoint.io import build_on_meta, read_config
from molmo.train.config import TrainConfig
from molmo.train.setup import load_sharded, shard_model
dist.init_process_group("gloo")
ckpt, out, precision = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
model = build_on_meta(read_config(ckpt), torch.float32)
model = shard_model(model, TrainConfig(model="tiny-qwen2", precision=precision, attention="sdpa"), 2,
                    torch.device("cpu"))
model = load_sharded(model, ckpt, torch.device("cpu"))
local = sum(p.to_local().numel() for p in model.parameters())
state = {k: v.full_tensor() for k, v in model.state_dict().items()}
with torch.no_grad():
    logits = model(torch.arange(1, 12)[None] * 7).logits
if dist.get_rank() == 0:
    torch.save({"state": state, "local": local, "logits": logits}, out)
dist.barrier()  # both ranks past their last collective before either tears gloo down
dist.destroy_process_group()
"""


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.slow  # two processes (20-40 s on 2 loaded cores): full suite only
def test_two_ranks_load_their_shards_from_meta(conformance_dir, tmp_path, precision):
    ckpt = conformance_dir / "models" / "tiny_qwen2"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script), str(ckpt), str(out), precision], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = torch.load(out)
    ref, _ = load_molmo(ckpt)
    for name, tensor in ref.state_dict().items():
        assert torch.equal(got["state"][name], tensor), name
    total = sum(p.numel() for p in ref.parameters())
    assert got["local"] < 0.55 * total  # rank 0 holds about half
    with torch.no_grad():
        expected = ref(torch.arange(1, 12)[None] * 7).logits
    if precision == "fp32":
        torch.testing.assert_close(got["logits"], expected, rtol=1e-5, atol=1e-5)
    else:  # computed in bf16 by the policy, no autocast
        assert got["logits"].dtype == torch.bfloat16
        torch.testing.assert_close(got["logits"].float(), expected, rtol=0.1, atol=0.1)
