"""synthesize_corpus (espeak-ng) and the State-of-the-Union document selection."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf

from hilbert_pipeline.corpus import validate_corpus
from hilbert_pipeline.demo import (
    SynthesisError,
    find_espeak,
    select_documents,
    split_sentences,
    synthesize_corpus,
)

DOCS = [{"doc_id": "one", "label": "x", "group": "p1", "sentences": ["First sentence here.",
                                                                     "And a second one."]},
        {"doc_id": "two", "label": "y", "sentences": ["Just one sentence."], "year": 1901}]


def test_synthesize_corpus_layout_timestamps_and_reuse(tmp_path, espeak):
    out = synthesize_corpus(tmp_path / "c", DOCS, sample_rate=16000, seed=4)
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert rows == [
        {"doc_id": "one", "label": "x", "audio": "audio/one.flac",
         "transcript": "transcripts/one.json", "group": "p1", "year": ""},
        {"doc_id": "two", "label": "y", "audio": "audio/two.flac",
         "transcript": "transcripts/two.json", "group": "", "year": "1901"}]
    info = sf.info(str(out / "audio/one.flac"))
    assert (info.samplerate, info.channels) == (16000, 1)
    segs = json.loads((out / "transcripts/one.json").read_text())["segments"]
    assert [s["text"] for s in segs] == DOCS[0]["sentences"]
    x, sr = sf.read(str(out / "audio/one.flac"))
    assert segs[0]["start"] > 0.2 and segs[1]["start"] - segs[0]["end"] >= 0.25 - 1e-3
    assert info.duration > segs[1]["end"]
    for s in segs:  # speech inside each cue, silence just before it
        assert np.abs(x[int(s["start"] * sr): int(s["end"] * sr)]).max() > 0.05
        assert np.abs(x[int(s["start"] * sr) - 800: int(s["start"] * sr) - 5]).max() < 1e-3
    assert validate_corpus(out, min_docs_per_label=1).ok
    # same inputs: reused (files untouched); another seed: rebuilt with other pauses
    mtime = os.stat(out / "audio/one.flac").st_mtime_ns
    synthesize_corpus(tmp_path / "c", DOCS, sample_rate=16000, seed=4)
    assert os.stat(out / "audio/one.flac").st_mtime_ns == mtime
    synthesize_corpus(tmp_path / "c", DOCS, sample_rate=16000, seed=5)
    segs5 = json.loads((out / "transcripts/one.json").read_text())["segments"]
    assert segs5[0]["start"] != segs[0]["start"]
    assert [round(s["end"] - s["start"], 3) for s in segs5] == \
        [round(s["end"] - s["start"], 3) for s in segs]  # same speech, other pauses
    assert not list(out.glob("**/*.tmp")) and not list(out.glob("audio/.*.done"))


def test_synthesize_corpus_refuses_foreign_folders_and_bad_input(tmp_path, espeak):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(SynthesisError, match="refusing to overwrite"):
        synthesize_corpus(tmp_path / "mine", DOCS)
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep me"
    with pytest.raises(SynthesisError, match="transcript_format"):
        synthesize_corpus(tmp_path / "a", DOCS, transcript_format="docx")
    with pytest.raises(SynthesisError, match="doc_id"):
        synthesize_corpus(tmp_path / "b", [DOCS[0], DOCS[0]])
    with pytest.raises(SynthesisError, match="non-empty"):
        synthesize_corpus(tmp_path / "c", [{"doc_id": "e", "label": "x", "sentences": [" "]}])


def test_missing_espeak_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng
    with pytest.raises(SynthesisError, match="sudo apt-get install -y espeak-ng"):
        find_espeak()
    with pytest.raises(SynthesisError, match="apt-get install -y espeak-ng"):
        synthesize_corpus(tmp_path / "c", DOCS)


def test_split_sentences_keeps_abbreviations():
    text = ("Fellow-Citizens of the Senate:\n\nMr. Smith went to Washington, D.C. today. "
            "The U.S. Army and Gen. Grant agreed! Did they? \"Yes.\" John Q. Adams spoke. "
            "We paid $1.5 million in 1850. Then we left.")
    assert split_sentences(text) == [
        "Fellow-Citizens of the Senate:", "Mr. Smith went to Washington, D.C. today.",
        "The U.S. Army and Gen. Grant agreed!", "Did they?", "\"Yes.\"",
        "John Q. Adams spoke.", "We paid $1.5 million in 1850.", "Then we left."]


def test_select_documents_is_seeded_stratified_and_label_free_of_voice():
    all_docs = select_documents(3, seed=0)
    assert len(all_docs) == 249
    counts = {}
    for d in all_docs:
        counts[d["label"]] = counts.get(d["label"], 0) + 1
        assert len(d["sentences"]) == 3 and "group" not in d
        assert set(d) == {"doc_id", "label", "sentences", "party", "president", "year"}
        assert d["label"] == d["party"]  # no class definition: the party is the label
    assert counts == {"Nonpartisan": 8, "Federalist": 4, "Democratic-Republican": 28,
                      "Democratic": 94, "Whig": 8, "Republican": 103, "National Union": 4}
    assert select_documents(3, seed=0) == all_docs
    assert select_documents(3, seed=1) != all_docs
    few = select_documents(2, n_documents=10, seed=0, group_column="president")
    assert len(few) == 10 and len({d["label"] for d in few}) == 7  # every party represented
    assert all(d["group"] == d["president"] for d in few)
    assert [d["year"] for d in few] == sorted(d["year"] for d in few)
    with pytest.raises(ValueError, match="group_column"):
        select_documents(2, group_column="label")
    # the demo's classes: minor parties merged, the party kept in its own column
    merged = select_documents(3, seed=0, classes={"Whig": "other", "Federalist": "other"})
    assert sum(d["label"] == "other" for d in merged) == 12
    assert {d["party"] for d in merged if d["label"] == "other"} == {"Whig", "Federalist"}
    assert [d["sentences"] for d in merged] == [d["sentences"] for d in all_docs]


def test_per_sentence_styles_change_only_their_sentence(tmp_path, espeak):
    docs = [{"doc_id": "s", "label": "x", "sentences": ["One two three four.", "Five six seven."],
             "styles": [None, {"rate": 100, "pitch": 20}]},
            {"doc_id": "p", "label": "x", "sentences": ["One two three four.", "Five six seven."]}]
    out = synthesize_corpus(tmp_path / "c", docs, transcript_format="txt")
    a1, _ = sf.read(str(out / "audio/s/s_1.flac"))
    b1, _ = sf.read(str(out / "audio/p/p_1.flac"))
    a2, _ = sf.read(str(out / "audio/s/s_2.flac"))
    b2, _ = sf.read(str(out / "audio/p/p_2.flac"))
    np.testing.assert_array_equal(a1, b1)  # the unstyled sentence is the very same audio
    assert len(a2) > 1.3 * len(b2)  # the slow one is longer
    with pytest.raises(SynthesisError, match="styles"):
        synthesize_corpus(tmp_path / "d", [{**docs[0], "styles": [None]}])
