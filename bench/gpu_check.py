"""GPU readiness: fused inference and one member's training on GPU against CPU.

    python bench/gpu_check.py [--members 5] [--batches 1,64,512] [--tolerance 1e-4] [--quick]

Random-weight members of the job's default architecture and preprocessing (the cost of
a trained bundle) on random inputs of the model's shape. Per device (CPU always, CUDA
when ``torch.cuda.is_available()``) it prints one table:

* fused inference (``raydisc.ensemble.fuse_ensemble``) at each batch size: recordings/s;
* the largest batch that fits in GPU memory (doubling until out of memory, capped);
* training throughput of one member (Adam, cross-entropy, batch 64): samples/s;
* the largest difference of the soft-vote probabilities against the reference, the
  unfused members on CPU (``--tolerance``, default 1e-4).

Exit status 1 if any device's probabilities differ from the reference by more than the
tolerance, else 0. Without a GPU it runs the CPU rows only and says so: the fused CPU
path is then checked against the unfused reference. ``bench/gpu_check.sh`` runs this and
the re-labelling and Serve benchmarks in their GPU layouts.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from raydisc.config import PreprocessConfig
from raydisc.ensemble import fuse_ensemble
from raydisc.models import build_model, input_shape_of

MAX_BATCH_CAP = 65536


def members_of(architecture: str, count: int, shape: tuple[int, ...]) -> list[torch.nn.Module]:
    members = []
    for seed in range(count):
        torch.manual_seed(seed)
        members.append(build_model(architecture, shape).eval())
    return members


def soft_vote(logits: torch.Tensor) -> np.ndarray:
    """``(n_members, b, n_classes)`` logits -> ``(b, n_classes)`` mean probabilities."""
    return torch.softmax(logits.float(), dim=-1).mean(dim=0).cpu().numpy()


def timed(fn, device: str, repeats: int) -> float:
    """Seconds per call of ``fn`` (after one warm-up call), synchronising CUDA."""
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def largest_batch(fused: torch.nn.Module, shape: tuple[int, ...], start: int) -> int:
    """Largest power-of-two multiple of ``start`` whose forward pass fits in GPU memory."""
    batch, fits = start, start
    while batch <= MAX_BATCH_CAP:
        try:
            with torch.inference_mode():
                fused(torch.zeros((batch, *shape), device="cuda"))
            torch.cuda.synchronize()
            fits, batch = batch, batch * 2
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return fits


def training_rate(architecture: str, shape: tuple[int, ...], device: str, steps: int, batch: int = 64) -> float:
    """Samples/s of Adam steps on one member with random inputs and labels."""
    torch.manual_seed(0)
    model = build_model(architecture, shape).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn((batch, *shape), device=device)
    y = torch.randint(0, 2, (batch,), device=device)

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return batch / timed(step, device, steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="spectrogram_cnn", choices=("spectrogram_cnn", "waveform_cnn"))
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--batches", default="1,64,512", help="inference batch sizes, comma-separated")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed probability difference")
    parser.add_argument("--quick", action="store_true", help="few repeats and small batches (the CPU test)")
    args = parser.parse_args(argv)

    shape = input_shape_of(args.architecture, PreprocessConfig())
    batches = [int(b) for b in ("1,8" if args.quick else args.batches).split(",")]
    repeats, steps = (2, 2) if args.quick else (20, 20)
    members = members_of(args.architecture, args.members, shape)
    x = torch.randn((max(batches), *shape), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = soft_vote(torch.stack([m(x) for m in members]))

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows, worst = [], {}
    for device in devices:
        fused = fuse_ensemble([m.to(device) for m in members])
        xd = x.to(device)
        with torch.inference_mode():
            worst[device] = float(np.abs(soft_vote(fused(xd)) - reference).max())
            rates = {b: b / timed(lambda b=b: fused(xd[:b]), device, repeats) for b in batches}
        max_batch = largest_batch(fused, shape, max(batches)) if device == "cuda" and not args.quick else None
        rows.append((device, rates, max_batch, training_rate(args.architecture, shape, device, steps)))
    members = [m.cpu() for m in members]

    name = torch.cuda.get_device_name(0) if "cuda" in devices else "none (CPU rows only)"
    print(f"GPU check: {args.members} x {args.architecture}, input {shape}; GPU: {name}; torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'device':<7}" + "".join(f"{f'infer b={b} rec/s':>19}" for b in batches)
          + f"{'max batch':>11}{'train samples/s':>17}{'max |dp|':>11}")
    for device, rates, max_batch, train in rows:
        print(f"{device:<7}" + "".join(f"{rates[b]:>19.0f}" for b in batches)
              + f"{max_batch if max_batch else '-':>11}{train:>17.0f}{worst[device]:>11.1e}")
    if "cuda" in devices:
        gpu, cpu = rows[1], rows[0]
        print("GPU / CPU: " + ", ".join(f"inference b={b} {gpu[1][b] / cpu[1][b]:.1f}x" for b in batches)
              + f", training {gpu[3] / cpu[3]:.1f}x")
    failed = [d for d, w in worst.items() if w > args.tolerance]
    if failed:
        print(f"MISMATCH: probabilities on {', '.join(failed)} differ from the unfused CPU reference by more than "
              f"{args.tolerance:g}", file=sys.stderr)
        return 1
    print(f"probabilities agree with the unfused CPU reference within {args.tolerance:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
