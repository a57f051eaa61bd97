"""Forward + backward cost of the HILBERT model as documents get longer.

For each N (segments per document) one training step (forward, full HilbertLoss, backward) on a
batch of B documents is timed and its peak memory measured. Every N runs in a fresh
subprocess, so the peak of one size cannot hide the next one's:

- CUDA: ``torch.cuda.max_memory_allocated`` during the step minus the memory allocated before
  it (model, optimiser-free, inputs), i.e. the activation + gradient memory of the step;
- CPU: the growth of the process's peak resident set size (``resource.getrusage(...).ru_maxrss``)
  over one step, measured after the model and inputs exist and after a small warm-up step, so
  allocator and kernel set-up are not counted. (tracemalloc cannot see torch's allocations.)

Usage: ``python benchmarks/bench_model.py [--device cpu|cuda|auto] [--sizes 256 512 1024 2048]``.
Prints one line per N and a final ``scaling: time_x_per_doubling=<max ratio of consecutive
times> peak_mem_mb_at_<largest N>=<value>`` line (the ratio is per doubling of N only when the
sizes double, as the defaults do).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import hilbert_pipeline  # noqa: F401,E402  (pins the CPU kernels before torch loads)


def _single(args: argparse.Namespace) -> dict:
    import torch

    from hilbert_pipeline.model import HilbertConfig, HilbertLoss, HilbertModel

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.manual_seed(args.seed)
    cfg = HilbertConfig(audio_dim=args.audio_dim, text_dim=args.text_dim, n_classes=4, d=args.d,
                        n_heads=args.heads, pool_hops=args.hops, top_k=2)
    model = HilbertModel(cfg).to(device).train()
    loss_fn = HilbertLoss(cfg, class_counts=[10, 5, 3, 2]).to(device)
    b = args.batch
    gen = torch.Generator().manual_seed(args.seed)

    def batch(n: int):
        a = torch.randn(b, n, args.audio_dim, generator=gen)
        t = torch.randn(b, n, args.text_dim, generator=gen)
        m = torch.ones(b, n, dtype=torch.bool)
        m[1:, n - n // 8:] = False  # some padding, as in real batches
        tm = m.clone()
        tm[:, ::7] = False  # and segments without text
        return [x.to(device) for x in (a, t, m, tm)]

    labels = torch.arange(b, device=device) % 4

    def step(inputs) -> None:
        model.zero_grad(set_to_none=True)
        loss_fn.zero_grad(set_to_none=True)
        loss_fn(model(*inputs), labels)["total"].backward()
        if cuda:
            torch.cuda.synchronize()

    step(batch(16))  # warm-up: kernels, allocator pools, autograd machinery
    inputs = batch(args.single)
    if cuda:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    step(inputs)
    if cuda:
        peak_mb = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step(inputs)
        times.append(time.perf_counter() - t0)
    return {"n": args.single, "time_s": statistics.median(times), "min_time_s": min(times),
            "peak_mem_mb": peak_mb, "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(device) if cuda else "cpu"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--hops", type=int, default=4)
    p.add_argument("--audio-dim", type=int, default=256)
    p.add_argument("--text-dim", type=int, default=384)
    p.add_argument("--repeats", type=int, default=3, help="timed steps per N (median reported)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--single", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.single is not None:
        print(json.dumps(_single(args)))
        return 0

    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    how = ("torch.cuda.max_memory_allocated delta" if args.device.startswith("cuda")
           else "ru_maxrss delta of a fresh process")
    print(f"# HILBERT train step (forward + HilbertLoss + backward): B={args.batch} d={args.d} "
          f"heads={args.heads} hops={args.hops} d_audio={args.audio_dim} d_text={args.text_dim} "
          f"device={args.device}; peak memory = {how}")
    results = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--single", str(n)]
        for k in ("batch", "d", "heads", "hops", "audio_dim", "text_dim", "repeats", "device",
                  "threads", "seed"):
            cmd += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            print(f"N={n}: failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"N={n:5d} time_s={r['time_s']:.4f} (min {r['min_time_s']:.4f}) "
              f"peak_mem_mb={r['peak_mem_mb']:.1f} threads={r['threads']} device={r['device']}",
              flush=True)
    ratios = [b["time_s"] / a["time_s"] for a, b in zip(results, results[1:], strict=False)]
    worst = max(ratios) if ratios else float("nan")
    print(f"scaling: time_x_per_doubling={worst:.2f} "
          f"peak_mem_mb_at_{results[-1]['n']}={results[-1]['peak_mem_mb']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
