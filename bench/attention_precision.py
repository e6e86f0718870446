"""Causal attention forward + backward on the CPU, bf16 against float32, per shape.

    python bench/attention_precision.py                      # the shapes below, torch's threads
    OMP_NUM_THREADS=1 python bench/attention_precision.py

The reason glm.model.transformer.attend leaves bf16 autocast for attention on a CPU: PyTorch's
CPU flash-attention kernel is slower in bf16 than in float32 at small head sizes and contexts.
Each cell is the median of --repeats timings of --calls calls of
F.scaled_dot_product_attention(is_causal=True) followed by the backward pass.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

# (batch, heads, time, head_dim): the tiny preset's attention (width 64), the old tiny (width 128)
# and the text preset's, then wider heads, a longer context, and a GPU-sized shape.
SHAPES = [(32, 4, 256, 16), (32, 4, 256, 32), (12, 4, 64, 32), (32, 4, 256, 64), (16, 4, 512, 32), (8, 8, 1024, 64)]


def milliseconds(dtype: torch.dtype, shape: tuple[int, ...], calls: int, repeats: int) -> float:
    q, k, v = (torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(3))
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
        timings.append((time.perf_counter() - started) / calls)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"threads: {torch.get_num_threads()}\n")
    print("| batch, heads, time, head_dim | bf16 ms | float32 ms | bf16 / float32 |\n|---|---|---|---|")
    for shape in SHAPES:
        bf16, fp32 = (milliseconds(dtype, shape, args.calls, args.repeats) for dtype in (torch.bfloat16, torch.float32))
        print(f"| {', '.join(map(str, shape))} | {bf16:.1f} | {fp32:.1f} | {bf16 / fp32:.2f} |")


if __name__ == "__main__":
    main()
