"""Transcript parsing: every format, from files written here, on real espeak-ng speech."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from hilbert_pipeline.corpus import (
    SegmentationConfig,
    TranscriptError,
    parse_clock,
    parse_transcript,
    segment_corpus,
    validate_corpus,
)
from hilbert_pipeline.demo import synthesize_corpus

NO_RULES = SegmentationConfig(min_duration=None, max_duration=None, max_segments=None)

SENTENCES = {
    "d1": ["The river was wide and calm this morning.", "Boats drifted past the old mill.",
           "Nobody spoke."],
    "d2": ["Taxes will be lower next year for every family.",
           "Congress must act before the winter session ends."],
}


@pytest.fixture(scope="session")
def speech_docs() -> list[dict]:
    return [{"doc_id": k, "label": lab, "sentences": v}
            for (k, v), lab in zip(SENTENCES.items(), ["a", "b"], strict=True)]


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory, espeak, speech_docs) -> dict[str, Path]:
    """The same two documents synthesised once in every transcript format."""
    root = tmp_path_factory.mktemp("speech")
    return {fmt: synthesize_corpus(root / fmt, speech_docs, transcript_format=fmt, seed=3)
            for fmt in ("json", "vtt", "srt", "tsv", "txt")}


@pytest.mark.parametrize("fmt", ["json", "vtt", "srt", "tsv", "txt"])
def test_every_format_round_trips_on_real_speech(speech_corpus, speech_docs, fmt):
    res = validate_corpus(speech_corpus[fmt], min_docs_per_label=1)
    assert res.ok, res.report["problems"]
    segs, docs, _ = segment_corpus(res.documents, NO_RULES)
    assert list(docs["doc_id"]) == ["d1", "d2"]
    for d in speech_docs:
        rows = segs[segs.doc_id == d["doc_id"]]
        assert list(rows["text"]) == d["sentences"]
        assert list(rows["seg_idx"]) == list(range(len(d["sentences"])))
        assert (rows["end"] > rows["start"]).all()
        assert (rows["start"].diff().dropna() > 0).all()
    # the same speech gives the same timestamps whatever the timed format (ms rounding)
    if fmt != "txt":
        ref = segment_corpus(validate_corpus(speech_corpus["json"], min_docs_per_label=1)
                             .documents, NO_RULES)[0]
        assert (segs["start"] - ref["start"]).abs().max() < 2e-3
        assert (segs["end"] - ref["end"]).abs().max() < 2e-3


def test_cue_timestamps_point_at_speech(speech_corpus):
    """Samples inside a cue are speech; the pauses between cues are silent."""
    res = validate_corpus(speech_corpus["json"], min_docs_per_label=1)
    doc = res.documents[0]
    x, sr = sf.read(str(doc.audio), dtype="float32")
    for a, b in zip(doc.cues[:-1], doc.cues[1:], strict=True):
        gap = x[int(a.end * sr) + 8: int(b.start * sr) - 8]
        assert gap.size > 0 and abs(gap).max() < 1e-3
        speech = x[int(b.start * sr): int(b.end * sr)]
        assert abs(speech).max() > 0.05


def _with_transcript(tmp_path: Path, src: Path, name: str, text: str | bytes) -> Path:
    """A one-document corpus: the d1 recording of ``src`` with a hand-written transcript."""
    shutil.copy(src / "audio" / "d1.flac", tmp_path / "rec.flac")
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    (tmp_path / "manifest.csv").write_text(f"doc_id,label,audio,transcript\nx,a,rec.flac,{name}\n")
    return p


def test_vtt_variants_bom_crlf_ids_tags_and_hours_optional(tmp_path, speech_corpus):
    vtt = ("\ufeffWEBVTT - some title\r\nKind: captions\r\n\r\n"
           "NOTE this block is a comment\r\n\r\n"
           "STYLE\r\n::cue { color: red }\r\n\r\n"
           "intro\r\n00:00.400 --> 00:01.500 align:start position:10%\r\n"
           "<v Roger Bingham>Hello <i>there</i>,\r\nsecond &amp; line\r\n\r\n"
           "00:00:01.600 --> 00:00:02.250\r\n<c.yellow>next</c> <00:00:01.900>cue\r\n\r\n"
           "3\r\n0:00:02.500 --> 0:00:03.100\r\nthird\r\n")
    p = _with_transcript(tmp_path, speech_corpus["json"], "t.vtt", vtt)
    cues = parse_transcript(p)
    assert [(c.start, c.end, c.text) for c in cues] == [
        (0.4, 1.5, "Hello there, second & line"), (1.6, 2.25, "next cue"), (2.5, 3.1, "third")]
    assert validate_corpus(tmp_path, min_docs_per_label=1, require_labels=False).ok


def test_srt_comma_millis_hours_and_multiline(tmp_path, speech_corpus):
    srt = ("1\n00:00:00,500 --> 00:00:01,250\n{\\an8}<b>Line one</b>\nline two\n\n"
           "2\n00:00:01,300 --> 00:00:02,000\nLast\n\n")
    cues = parse_transcript(_with_transcript(tmp_path, speech_corpus["json"], "t.srt", srt))
    assert [(c.start, c.end, c.text) for c in cues] == [(0.5, 1.25, "Line one line two"),
                                                        (1.3, 2.0, "Last")]
    assert [c.index for c in cues] == [1, 2]


def test_parse_clock():
    assert parse_clock("01:02:03.5") == 3723.5
    assert parse_clock("02:03,045") == 123.045
    assert parse_clock("10:00:00.000") == 36000.0
    for bad in ("1:2:3:4", "00:61.000", "abc", "00:00:00.1234"):
        with pytest.raises(ValueError):
            parse_clock(bad)


def test_subtitle_problems_are_all_reported(tmp_path):
    p = tmp_path / "bad.srt"
    p.write_text("1\n00:00:00,500 --> 00:00:01,250\nok\n\n"
                 "2\n00:00:xx,000 --> 00:00:02,000\nbad time\n\n"
                 "3\n00:00:03,000 -> 00:00:04,000\nno arrow\n\n"
                 "4\n00:00:05,000 --> 00:00:06,000\nfine\n")
    with pytest.raises(TranscriptError) as err:
        parse_transcript(p)
    probs = err.value.problems
    assert [(q.kind, q.cue) for q in probs] == [("transcript_unparsable", 2),
                                               ("transcript_unparsable", 3)]
    assert probs[0].line == 6 and "bad timestamp" in probs[0].message
    assert "bad.srt" in str(err.value)


def test_tsv_header_only_when_clearly_a_header(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_text("start\tend\ttext\n0.5\t1.0\thello\n1.2\t2\tworld\twith tab\n3\t4\t\n")
    cues = parse_transcript(p)
    assert [(c.start, c.end, c.text) for c in cues] == [
        (0.5, 1.0, "hello"), (1.2, 2.0, "world with tab"), (3.0, 4.0, "")]
    q = tmp_path / "b.tsv"
    q.write_text("begin\tfinish\ttext\n0.5\t1.0\thello\n")  # not clearly a header
    with pytest.raises(TranscriptError) as err:
        parse_transcript(q)
    assert err.value.problems[0].line == 1
    r = tmp_path / "c.tsv"
    r.write_text("0.5\t1.0\thello\nstart\tend\ttext\n")  # a header-like line later is an error
    with pytest.raises(TranscriptError) as err:
        parse_transcript(r)
    assert err.value.problems[0].line == 2


def test_json_problems(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"segments": [{"start": 0, "end": 1, "text": "ok"},
                                          {"start": "x", "end": 2, "text": "bad"},
                                          {"start": 2, "end": None, "text": 5}]}))
    with pytest.raises(TranscriptError) as err:
        parse_transcript(p)
    assert [q.cue for q in err.value.problems] == [2, 3]
    p.write_text('{"segments": [')
    with pytest.raises(TranscriptError, match="invalid JSON"):
        parse_transcript(p)
    p.write_text('[{"start": 0, "end": 1, "text": "x"}]')
    with pytest.raises(TranscriptError, match="segments"):
        parse_transcript(p)
    p.write_text('{"segments": []}')
    with pytest.raises(TranscriptError) as err:
        parse_transcript(p)
    assert err.value.problems[0].kind == "transcript_empty"


def test_empty_and_unknown_transcripts(tmp_path):
    for name, text in [("e.vtt", "WEBVTT\n\n"), ("e.srt", "\n\n"), ("e.tsv", "\n"),
                       ("e.txt", "\n\n")]:
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(TranscriptError) as err:
            parse_transcript(p)
        assert err.value.problems[0].kind == "transcript_empty", name
    for ext in (".vtt", ".srt", ".json", ".tsv", ".csv", ".cha", ".txt"):  # 0 bytes / blank
        for text in ("", " \n\n"):
            p = tmp_path / f"blank{ext}"
            p.write_text(text)
            with pytest.raises(TranscriptError) as err:
                parse_transcript(p)
            [problem] = err.value.problems
            assert (problem.kind, problem.message) == ("transcript_empty", "the file is empty"), ext
    (tmp_path / "x.docx").write_text("hi")
    with pytest.raises(TranscriptError, match="unknown transcript extension"):
        parse_transcript(tmp_path / "x.docx")
