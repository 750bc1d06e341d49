"""Which floating-point type to compute in on this machine: bf16 where the hardware computes it fast (GPUs, CPUs
with AMX or AVX512-BF16), fp32 where it does not (on some CPUs bf16 matmuls run tens of times slower than fp32).
A short matmul probe decides on the CPU, once per process.

    from molmo.precision import resolve_dtype
    dtype = resolve_dtype("auto", device="cpu")   # torch.bfloat16 or torch.float32
    python -m molmo.precision                      # prints the probe's timings and the choice
"""

from __future__ import annotations

import functools
import time

import torch

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def _matmul_seconds(dtype: torch.dtype, size: int = 512, repeats: int = 8) -> float:
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b  # warm-up: the first call picks kernels
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return (time.perf_counter() - start) / repeats


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """fp32 matmul time over bf16 matmul time on this CPU (> 1: bf16 is faster); the best of three rounds."""
    return max(_matmul_seconds(torch.float32) / _matmul_seconds(torch.bfloat16) for _ in range(3))


def fast_bf16(device: str | torch.device = "cpu") -> bool:
    """True where bf16 compute is at least as fast as fp32: every CUDA GPU with bf16 support, and CPUs where the
    probe measures bf16 matmuls no slower than fp32 ones."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_bf16_speedup() >= 1.0
    return False


def resolve_dtype(name: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """'auto' -> bf16 where `fast_bf16(device)`, else fp32; other names ('bfloat16', 'fp32', ...) as given."""
    if isinstance(name, torch.dtype):
        return name
    if name == "auto":
        return torch.bfloat16 if fast_bf16(device) else torch.float32
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose auto, {', '.join(sorted(DTYPES))}")
    return DTYPES[name]


if __name__ == "__main__":
    fp32, bf16 = _matmul_seconds(torch.float32), _matmul_seconds(torch.bfloat16)
    print(f"512x512 matmul: fp32 {fp32 * 1e3:.2f} ms, bf16 {bf16 * 1e3:.2f} ms; "
          f"auto picks {resolve_dtype('auto')} on the CPU")
