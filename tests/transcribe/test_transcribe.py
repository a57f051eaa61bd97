"""Whisper transcription of recordings without a transcript: real espeak-ng speech, the shipped
tiny.en model, real files (no mocks)."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from kedro_helpers import make_project_copy, run_kedro
from memory_runner import run_in_memory

from hilbert_pipeline.audio import audio_info
from hilbert_pipeline.corpus import CorpusValidationError, parse_transcript, validate_corpus
from hilbert_pipeline.demo import synthesize_corpus
from hilbert_pipeline.pipelines.segmentation import create_pipeline as segmentation_pipeline
from hilbert_pipeline.transcribe import TranscribeError, TranscribeOptions, transcribe_corpus

DOCS = [{"doc_id": "d1", "label": "a",
         "sentences": ["The river was wide and calm this morning.",
                       "Boats drifted past the old mill.", "Nobody spoke for a while."]},
        {"doc_id": "d2", "label": "b",
         "sentences": ["Taxes will be lower next year for every family.",
                       "Congress must act before the winter session ends."]}]
OPTS = TranscribeOptions()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate (word-level edit distance / reference words), case and punctuation
    ignored."""
    ref = re.findall(r"[a-z0-9']+", reference.lower())
    hyp = re.findall(r"[a-z0-9']+", hypothesis.lower())
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))


def _without_transcripts(src: Path, dest: Path, keep: tuple[str, ...] = ()) -> Path:
    """A copy of corpus ``src`` whose manifest leaves the transcript empty (except ``keep``)."""
    shutil.copytree(src, dest)
    rows = list(csv.DictReader((dest / "manifest.csv").open()))
    for r in rows:
        if r["doc_id"] not in keep:
            (dest / r["transcript"]).unlink()
            r["transcript"] = ""
    with (dest / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return dest


@pytest.fixture(scope="module")
def spoken(tmp_path_factory, espeak) -> Path:
    return synthesize_corpus(tmp_path_factory.mktemp("spoken") / "c", DOCS, seed=4)


def test_recordings_become_vtt_transcripts_with_the_spoken_words(tmp_path, spoken):
    corpus = _without_transcripts(spoken, tmp_path / "c")
    out = tmp_path / "transcripts"
    rep = transcribe_corpus(corpus, out, OPTS)
    assert set(rep["transcribed"]) == {"d1", "d2"} and rep["failed"] == {}
    # the real-time factor is reported (its speed target lives in benchmarks/bench_transcribe.py,
    # not in a timed test: a loaded machine must not fail the suite)
    assert rep["audio_seconds"] > 0 and rep["compute_seconds"] > 0
    assert rep["rtf"] == pytest.approx(rep["compute_seconds"] / rep["audio_seconds"], abs=1e-3)
    for d in DOCS:
        path = Path(rep["transcribed"][d["doc_id"]]["file"])
        assert path == out / f"{d['doc_id']}.vtt"
        cues = parse_transcript(path)  # the project's own WebVTT reader accepts it
        dur = audio_info(corpus / "audio" / f"{d['doc_id']}.flac")[0]
        assert all(0 <= c.start < c.end <= dur + 1e-3 for c in cues)
        assert all(a.end <= b.start for a, b in zip(cues[:-1], cues[1:], strict=True))
        assert wer(" ".join(d["sentences"]), " ".join(c.text for c in cues)) <= 0.3
    # validation reads them as if the user had given them
    res = validate_corpus(corpus, min_docs_per_label=1, generated_transcripts=out)
    assert res.ok, res.report["problems"]
    assert [Path(d.transcript).parent for d in res.documents] == [out, out]


def test_generated_file_names_are_safe_and_distinct():
    from hilbert_pipeline.corpus.manifest import transcript_name

    assert transcript_name("int_001", ".vtt") == "int_001.vtt"
    a, b = transcript_name("a/b", ".vtt"), transcript_name("a:b", ".vtt")
    assert "/" not in a and ":" not in b and a != b and a.startswith("a_b-")


def test_a_second_run_uses_the_cache_and_loads_no_model(tmp_path, spoken):
    corpus = _without_transcripts(spoken, tmp_path / "c")
    first = transcribe_corpus(corpus, tmp_path / "t", OPTS)
    (tmp_path / "t" / "d1.vtt").unlink()
    again = transcribe_corpus(corpus, tmp_path / "t", OPTS)
    assert all(e["cache"] for e in again["transcribed"].values())
    assert "device" not in again and again["compute_seconds"] == 0
    assert (tmp_path / "t" / "d1.vtt").read_text() == \
        Path(first["transcribed"]["d1"]["file"]).read_text()
    # decoding is deterministic: a fresh transcription gives the same file
    fresh = transcribe_corpus(corpus, tmp_path / "t2", OPTS)
    assert not fresh["transcribed"]["d1"]["cache"]
    assert (tmp_path / "t2" / "d1.vtt").read_text() == (tmp_path / "t" / "d1.vtt").read_text()
    # other options are another transcript: not served from the cache
    other = transcribe_corpus(corpus, tmp_path / "t", TranscribeOptions(beam_size=2))
    assert not any(e["cache"] for e in other["transcribed"].values())


def test_an_unreadable_recording_is_reported_and_the_others_go_on(tmp_path, spoken):
    corpus = _without_transcripts(spoken, tmp_path / "c")
    (corpus / "audio" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    with (corpus / "manifest.csv").open("a") as f:
        f.write("broken,a,audio/broken.wav,\n")
    rep = transcribe_corpus(corpus, tmp_path / "t", OPTS)
    assert set(rep["transcribed"]) == {"d1", "d2"}
    assert list(rep["failed"]) == ["broken"] and "broken.wav" in rep["failed"]["broken"]
    res = validate_corpus(corpus, min_docs_per_label=1, generated_transcripts=tmp_path / "t")
    [p] = [p for p in res.report["problems"] if p["doc_id"] == "broken"
           and p["kind"] == "transcript_missing"]
    assert "transcription.json" in p["message"]


def test_a_silent_recording_is_reported_as_without_speech(tmp_path, spoken):
    import numpy as np
    import soundfile as sf

    corpus = _without_transcripts(spoken, tmp_path / "c")
    sf.write(corpus / "audio" / "quiet.wav", np.zeros(3 * 16000), 16000)
    with (corpus / "manifest.csv").open("a") as f:
        f.write("quiet,a,audio/quiet.wav,\n")
    rep = transcribe_corpus(corpus, tmp_path / "t", OPTS)
    assert set(rep["transcribed"]) == {"d1", "d2", "quiet"}
    res = validate_corpus(corpus, min_docs_per_label=1, generated_transcripts=tmp_path / "t")
    [p] = [p for p in res.report["problems"] if p["doc_id"] == "quiet"]
    assert p["kind"] == "transcript_no_speech" and "quiet.wav" in p["message"], p
    assert "listen to the recording" in str(CorpusValidationError(res.report))
    # a transcript the user gave without cues stays an empty transcript
    (corpus / "quiet.vtt").write_text("WEBVTT\n\n")
    text = (corpus / "manifest.csv").read_text().replace("audio/quiet.wav,", "audio/quiet.wav,quiet.vtt")
    (corpus / "manifest.csv").write_text(text)
    res = validate_corpus(corpus, min_docs_per_label=1, generated_transcripts=tmp_path / "t")
    assert [p["kind"] for p in res.report["problems"] if p["doc_id"] == "quiet"] == [
        "transcript_empty"]


def test_a_given_transcript_is_never_replaced(tmp_path, spoken):
    corpus = _without_transcripts(spoken, tmp_path / "c", keep=("d1",))
    given = corpus / "transcripts" / "d1.json"
    before = (given.read_bytes(), given.stat().st_mtime_ns)
    rep = transcribe_corpus(corpus, tmp_path / "t", OPTS)
    assert set(rep["transcribed"]) == {"d2"} and rep["given"] == 1
    assert (given.read_bytes(), given.stat().st_mtime_ns) == before
    assert not (tmp_path / "t" / "d1.vtt").exists()


def test_clip_folders_get_one_line_per_clip(tmp_path, espeak):
    corpus = synthesize_corpus(tmp_path / "clips", DOCS[:1], transcript_format="txt", seed=1)
    corpus = _without_transcripts(corpus, tmp_path / "c")
    rep = transcribe_corpus(corpus, tmp_path / "t", OPTS)
    lines = Path(rep["transcribed"]["d1"]["file"]).read_text().splitlines()
    assert len(lines) == 3
    for line, sentence in zip(lines, DOCS[0]["sentences"], strict=True):
        assert wer(sentence, line) <= 0.3
    assert validate_corpus(corpus, min_docs_per_label=1, require_labels=False,
                           generated_transcripts=tmp_path / "t").ok


def test_a_folder_that_is_not_a_whisper_model_is_refused(tmp_path, spoken):
    corpus = _without_transcripts(spoken, tmp_path / "c")
    (tmp_path / "model").mkdir()
    with pytest.raises(TranscribeError, match="not a CTranslate2 Whisper folder"):
        transcribe_corpus(corpus, tmp_path / "t", TranscribeOptions(model_path=str(tmp_path /
                                                                                    "model")))
    with pytest.raises(TranscribeError, match="unknown key"):
        TranscribeOptions.from_params({"beam": 3})


def test_segmentation_pipeline_transcribes_first(tmp_path, spoken):
    corpus = _without_transcripts(spoken, tmp_path / "c")
    out = run_in_memory(segmentation_pipeline(), params={
        "corpus": str(corpus),
        "transcribe": {"output_dir": str(tmp_path / "t"), "progress": False},
        "segmentation": {"min_docs_per_label": 1, "progress": False, "min_duration": None,
                         "report_path": str(tmp_path / "v.json")}})
    segs = out["segments"]
    assert set(segs["doc_id"]) == {"d1", "d2"}
    text = " ".join(segs[segs.doc_id == "d1"]["text"])
    assert wer(" ".join(DOCS[0]["sentences"]), text) <= 0.3
    assert set(out["transcription_report"]["transcribed"]) == {"d1", "d2"}


@pytest.mark.slow
def test_default_pipeline_on_a_corpus_without_any_transcript(tmp_path, espeak):
    from tiny_topics import KEDRO_PARAMS, tiny_documents

    project = make_project_copy(tmp_path / "project")
    full = synthesize_corpus(tmp_path / "full", tiny_documents(), seed=0)
    corpus = _without_transcripts(full, project / "data" / "01_raw" / "bare")
    run_kedro(project, "run", "--params", f"corpus={corpus},{KEDRO_PARAMS}")
    report = pd.read_json(project / "data/08_reporting/transcription.json", typ="series")
    assert len(report["transcribed"]) == 12 and report["failed"] == {}
    segs = pd.read_parquet(project / "data/03_primary/segments.parquet")
    assert segs["doc_id"].nunique() == 12 and (segs["text"].str.len() > 0).mean() > 0.9
    assert (project / "data/08_reporting/metrics.json").is_file()


def test_diarization_separates_two_voices_taking_turns(tmp_path, espeak):
    """A synthetic interview: two espeak voices alternate; the transcript names them apart."""
    turns = [("A", "How have you been sleeping lately?"),
             ("B", "Not well, I wake up every night around three."),
             ("A", "What goes through your mind when that happens?"),
             ("B", "Mostly my work and the money we owe."),
             ("A", "Do you talk to anyone about it?"),
             ("B", "Sometimes my sister calls on Sundays."),
             ("A", "How is your appetite these days?"),
             ("B", "I skip breakfast most mornings now.")]
    style = {"A": {"voice": "en-us", "pitch": 75}, "B": {"voice": "en-gb+m3", "pitch": 25}}
    full = synthesize_corpus(tmp_path / "full", [{
        "doc_id": "int", "label": "a", "sentences": [t for _, t in turns],
        "styles": [style[w] for w, _ in turns]}], seed=3)
    truth = pd.read_json(full / "transcripts" / "int.json")["segments"]
    corpus = _without_transcripts(full, tmp_path / "c")
    for opts in (TranscribeOptions(diarize=True), TranscribeOptions(diarize=True, n_speakers=2)):
        out = tmp_path / f"t{opts.n_speakers}"
        transcribe_corpus(corpus, out, opts)
        cues = parse_transcript(out / "int.vtt")
        pairs = []
        for c in cues:  # the true speaker of the turn the cue falls in
            mid = (c.start + c.end) / 2
            k = min(range(len(truth)), key=lambda i: abs(
                (truth[i]["start"] + truth[i]["end"]) / 2 - mid))
            pairs.append((turns[k][0], c.speaker))
        assert {s for _, s in pairs} == {"SPEAKER_1", "SPEAKER_2"}, pairs
        agree = sum((w == "A") == (s == "SPEAKER_1") for w, s in pairs) / len(pairs)
        assert agree >= 0.9, pairs
    # the speaker filter keeps one voice
    res = validate_corpus(corpus, min_docs_per_label=1, require_labels=False,
                          generated_transcripts=out, speakers={"keep": ["SPEAKER_2"]})
    assert res.ok and {c.speaker for c in res.documents[0].cues} == {"SPEAKER_2"}


def test_transcription_on_a_dask_cluster_equals_in_process(tmp_path, spoken, dask_client):
    corpus = _without_transcripts(spoken, tmp_path / "c")
    (corpus / "audio" / "broken.wav").write_bytes(b"not audio")
    with (corpus / "manifest.csv").open("a") as f:
        f.write("broken,a,audio/broken.wav,\n")
    transcribe_corpus(corpus, tmp_path / "here", OPTS)
    there = transcribe_corpus(corpus, tmp_path / "there", OPTS, client=dask_client)
    assert set(there["transcribed"]) == {"d1", "d2"} and list(there["failed"]) == ["broken"]
    for d in ("d1", "d2"):
        assert (tmp_path / "there" / f"{d}.vtt").read_text() == \
            (tmp_path / "here" / f"{d}.vtt").read_text()


def test_a_transformers_whisper_folder_works_through_the_same_interface(tmp_path, spoken):
    """A (tiny, random) transformers Whisper folder is converted once to CTranslate2 and used
    like the shipped model; its words are noise, the interface is what is tested."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from hilbert_pipeline.transcribe import shipped_model_dir

    folder = tmp_path / "tiny-whisper"
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=51864, d_model=16, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
                           max_source_positions=1500, max_target_positions=448,
                           pad_token_id=50256, bos_token_id=50257, eos_token_id=50256,
                           decoder_start_token_id=50257)
    WhisperForConditionalGeneration(config).eval().save_pretrained(folder)
    WhisperFeatureExtractor().save_pretrained(folder)
    shutil.copy(shipped_model_dir() / "tokenizer.json", folder / "tokenizer.json")
    opts = TranscribeOptions(model_path=str(folder), converted_dir=str(tmp_path / "ct2"))
    converted = opts.model_dir()
    assert (converted / "model.bin").is_file() and converted.parent == tmp_path / "ct2"
    assert opts.model_dir() == converted  # converted once
    corpus = _without_transcripts(spoken, tmp_path / "c")
    rep = transcribe_corpus(corpus, tmp_path / "t", opts)
    assert set(rep["transcribed"]) | set(rep["failed"]) == {"d1", "d2"}
    assert rep["options"]["model"] != OPTS.identity()["model"]  # another model, another cache key
    (folder / "tokenizer.json").unlink()
    with pytest.raises(TranscribeError, match="tokenizer.json"):
        TranscribeOptions(model_path=str(folder), converted_dir=str(tmp_path / "x")).model_dir()
