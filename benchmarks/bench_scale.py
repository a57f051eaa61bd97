"""Benchmark: embedding in-process vs on a 2-worker Dask LocalCluster, and Dask's per-task cost.

On the same segments (the demo corpus's first ``--n`` rows when present, else espeak-ng
synthesis of State-of-the-Union sentences, as ``bench_embedding.py``), each with an empty cache:

(a) in-process  — ``embed_segments`` in this process (models loaded beforehand, not timed);
(b) cluster     — ``embed_segments_on_cluster`` on a LocalCluster of ``--workers`` processes
                  (cluster started and every worker's encoders loaded beforehand, not timed; the
                  time includes the final assembly from the cache in this process).

Then the scheduling overhead: ``--tasks`` no-op tasks submitted and gathered, seconds per task.

On a 2-core machine two worker processes compete with each other (and with this process) for
the same cores, and each PyTorch forward already uses them, so expect a ratio near 1: the
cluster pays off with more cores, more machines, or one GPU per worker. The last line is
``scale: cluster_over_in_process=<b/a wall time> per_task_ms=<overhead>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import hilbert_pipeline  # noqa: F401,E402  (pins the CPU kernels before torch loads)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _noop(i: int) -> int:
    return i


def _warm(audio, text) -> str:
    """Load the encoders on a worker (the timed run then measures embedding, not loading)."""
    from hilbert_pipeline.encoders.registry import shared_encoder

    for spec in (audio, text):
        shared_encoder(spec[0], **spec[1]).ensure_loaded()
    return str(os.getpid())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="segments (default 400)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--segments", help="segments parquet (default: data/03_primary/...)")
    args = ap.parse_args()

    import torch
    from bench_embedding import load_segments

    from hilbert_pipeline.cluster import cluster_client
    from hilbert_pipeline.encoders import embed_segments
    from hilbert_pipeline.encoders.distributed import embed_segments_on_cluster
    from hilbert_pipeline.encoders.registry import shared_encoder

    seg, source = load_segments(args)
    print(f"segments: {len(seg)} from {source}; {os.cpu_count()} CPU cores; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    audio = ("resemblyzer", {"device": "cpu"})
    text = ("minilm", {"device": "cpu"})
    for spec in (audio, text):
        shared_encoder(spec[0], **spec[1]).ensure_loaded()
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))

    t = time.perf_counter()
    embed_segments(seg, shared_encoder(audio[0], **audio[1]), shared_encoder(text[0], **text[1]),
                   tmp / "in_process", progress=False)
    a = time.perf_counter() - t
    print(f"(a) in-process: {a:.1f} s ({len(seg) / a:.1f} segments/s)", flush=True)

    with cluster_client({"address": "local", "n_workers": args.workers}) as client:
        client.run(_warm, audio, text)
        t = time.perf_counter()
        _, summary = embed_segments_on_cluster(client, seg, audio, text, tmp / "cluster",
                                               progress=False)
        b = time.perf_counter() - t
        print(f"(b) cluster, {args.workers} workers: {b:.1f} s ({len(seg) / b:.1f} segments/s; "
              f"{summary['cluster']['tasks']} tasks, busy {summary['cluster']['task_seconds']:.1f}"
              f" worker-s)", flush=True)
        t = time.perf_counter()
        client.gather(client.map(_noop, range(args.tasks), pure=False))
        per_task = (time.perf_counter() - t) / args.tasks
        print(f"scheduling: {args.tasks} no-op tasks, {per_task * 1e3:.2f} ms per task",
              flush=True)
    print(f"scale: cluster_over_in_process={b / a:.2f} per_task_ms={per_task * 1e3:.2f}")


if __name__ == "__main__":
    main()
