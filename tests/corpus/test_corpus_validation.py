"""Validation options: manifest problems, explicit exclusion, rare labels, unlabelled corpora."""

from __future__ import annotations

import json

import pytest

from hilbert_pipeline.corpus import CorpusValidationError, load_corpus, validate_corpus
from hilbert_pipeline.demo import synthesize_corpus

DOCS = [{"doc_id": f"d{i}", "label": lab, "sentences": [f"Document number {i} speaks now."]}
        for i, lab in enumerate(["a", "a", "b", "b", "c"])]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, espeak):
    return synthesize_corpus(tmp_path_factory.mktemp("v") / "c", DOCS, seed=0)


def _copy(corpus, tmp_path, manifest: str):
    import shutil

    dst = tmp_path / "c"
    shutil.copytree(corpus, dst)
    (dst / "manifest.csv").write_text(manifest)
    return dst


def test_manifest_missing_and_missing_columns(tmp_path):
    (tmp_path / "empty").mkdir()
    rep = validate_corpus(tmp_path / "empty").report
    assert [p["kind"] for p in rep["problems"]] == ["manifest_missing"]
    (tmp_path / "empty" / "manifest.csv").write_text("doc_id,audio\nx,y\n")
    rep = validate_corpus(tmp_path / "empty").report
    [p] = rep["problems"]
    assert p["kind"] == "manifest_columns" and "label, transcript" in p["message"]
    (tmp_path / "empty" / "manifest.csv").write_text("doc_id,label,audio,transcript\n")
    assert validate_corpus(tmp_path / "empty").report["problems"][0]["kind"] == "manifest_empty"


def test_semicolon_and_tab_separated_manifests_read_like_commas(corpus, tmp_path):
    """Spreadsheet programs in decimal-comma locales export CSV with ';' between the columns."""
    rows = [line.split(",") for line in (corpus / "manifest.csv").read_text().splitlines()]
    want = [(d.doc_id, d.label, d.audio, d.transcript)
            for d in validate_corpus(corpus, min_docs_per_label=1).documents]
    assert len(want) == len(DOCS)
    for sep, name in ((";", "semi"), ("\t", "tab")):
        c = _copy(corpus, tmp_path / name, "".join(sep.join(r) + "\n" for r in rows))
        got = validate_corpus(c, min_docs_per_label=1)
        assert got.ok, got.report["problems"]
        assert [(d.doc_id, d.label, corpus / d.audio.relative_to(c),
                 corpus / d.transcript.relative_to(c)) for d in got.documents] == want
    # a ';' inside a comma-separated manifest's cell stays part of the cell
    c = _copy(corpus, tmp_path / "commas", ",".join(rows[0]) + "\n"
              + "".join(",".join([r[0], r[1] + ";x", *r[2:]]) + "\n" for r in rows[1:]))
    labels = {d.label for d in validate_corpus(c, min_docs_per_label=1).documents}
    assert labels == {"a;x", "b;x", "c;x"}


def test_label_too_few_fails_unless_rare_labels_are_excluded(corpus):
    rep = validate_corpus(corpus).report  # label c has one document
    assert not rep["ok"] and [p["kind"] for p in rep["problems"]] == ["label_too_few"]
    assert "label 'c' has 1 document(s) (d4)" in rep["problems"][0]["message"]  # named
    res = validate_corpus(corpus, exclude_rare_labels=True)
    assert res.ok and [d.doc_id for d in res.documents] == ["d0", "d1", "d2", "d3"]
    assert res.report["excluded"] == [{"row": 6, "doc_id": "d4", "reasons": [
        "label 'c' has 1 document(s), fewer than min_docs_per_label=2"]}]
    assert validate_corpus(corpus, min_docs_per_label=1).ok
    assert not validate_corpus(corpus, min_docs_per_label=3, exclude_rare_labels=False).ok


def test_labels_are_counted_as_the_classes_label_map_makes(corpus, tmp_path):
    """classes.label_map merges rare labels into one class: validation counts that class, so
    the merge the parameters document is not refused before it happens."""
    res = validate_corpus(corpus, label_map={"c": "b"})  # c (1 document) joins b
    assert res.ok, res.report["problems"]
    assert res.report["classes"] == {"b": 3, "a": 2} and res.report["labels"]["c"] == 1
    [p] = validate_corpus(corpus, label_map={"c": "z"}).report["problems"]
    assert p["kind"] == "label_too_few"
    assert p["message"].startswith("label 'z' (from 'c' through classes.label_map) has 1")
    res = validate_corpus(corpus, label_map={"c": "z"}, exclude_rare_labels=True)
    assert res.ok and [e["doc_id"] for e in res.report["excluded"]] == ["d4"]
    one = validate_corpus(corpus, label_map={"a": "x", "b": "x", "c": "x"})
    assert [p["kind"] for p in one.report["problems"]] == ["label_single_class"]
    # labels that differ only in case are flagged (as written they would be two classes) ...
    rows = (corpus / "manifest.csv").read_text().splitlines()
    rows[2] = rows[2].replace(",a,", ",A,", 1)  # d1: "A" beside d0's "a"
    c = _copy(corpus, tmp_path, "\n".join(rows) + "\n")
    kinds = [p["kind"] for p in validate_corpus(c, min_docs_per_label=1).report["problems"]]
    assert kinds == ["label_case"]
    assert "labels 'A', 'a' differ only in case" in str(
        CorpusValidationError(validate_corpus(c, min_docs_per_label=1).report))
    # ... unless the map makes them one class
    assert validate_corpus(c, label_map={"A": "a", "c": "b"}).ok


def test_exclude_invalid_lists_every_exclusion(corpus, tmp_path, caplog):
    c = _copy(corpus, tmp_path, "doc_id,label,audio,transcript\n"
              "d0,a,audio/d0.flac,transcripts/d0.json\nd1,a,audio/d1.flac,transcripts/d1.json\n"
              "d2,b,audio/d2.flac,transcripts/d2.json\nd3,b,audio/d3.flac,transcripts/d3.json\n"
              "bad1,b,audio/missing.flac,transcripts/d3.json\nbad2,,audio/d3.flac,"
              "transcripts/d3.json\n")
    strict = validate_corpus(c)
    assert not strict.ok and len(strict.report["problems"]) == 2 and not strict.report["excluded"]
    with pytest.raises(CorpusValidationError) as err:
        load_corpus(c, report_path=tmp_path / "r.json")
    msg = str(err.value)
    assert "[audio_missing]" in msg and "[label_missing]" in msg and "row 6" in msg
    assert json.loads((tmp_path / "r.json").read_text())["n_problems"] == 2
    res = load_corpus(c, report_path=tmp_path / "ok.json", exclude_invalid=True)
    assert not (tmp_path / "ok.json").exists()  # written by the caller (catalog) on success
    assert [d.doc_id for d in res.documents] == ["d0", "d1", "d2", "d3"]
    assert [(e["doc_id"], e["row"]) for e in res.report["excluded"]] == [("bad1", 6),
                                                                       ("bad2", 7)]
    assert "missing.flac" in res.report["excluded"][0]["reasons"][0]
    assert all(p["fatal"] is False for p in res.report["problems"])
    assert "excluding document 'bad1'" in caplog.text


def test_unlabelled_corpus_and_split_rules(corpus, tmp_path):
    c = _copy(corpus, tmp_path, "doc_id,label,audio,transcript,split\n"
              "d0,,audio/d0.flac,transcripts/d0.json,train\n"
              "d1,,audio/d1.flac,transcripts/d1.json,TEST\n")
    assert not validate_corpus(c).ok  # labels required by default
    res = validate_corpus(c, require_labels=False)
    assert res.ok and [d.split for d in res.documents] == ["train", "test"]
    (c / "manifest.csv").write_text("doc_id,label,audio,transcript,split\n"
                                    "d0,a,audio/d0.flac,transcripts/d0.json,train\n"
                                    "d1,a,audio/d1.flac,transcripts/d1.json,\n"
                                    "d2,b,audio/d2.flac,transcripts/d2.json,train\n"
                                    "d3,b,audio/d3.flac,transcripts/d3.json,test\n")
    kinds = [p["kind"] for p in validate_corpus(c).report["problems"]]
    assert kinds == ["split_partial"]
    (c / "manifest.csv").write_text("doc_id,label,audio,transcript\n"
                                    "d0,a,audio/d0.flac,transcripts/d0.json\n"
                                    "d1,a,audio/d1.flac,transcripts/d1.json\n")
    assert [p["kind"] for p in validate_corpus(c).report["problems"]] == ["label_single_class"]


def test_unlabelled_corpus_may_omit_the_label_column(corpus, tmp_path):
    c = _copy(corpus, tmp_path, "doc_id,audio,transcript\n"
              "d0,audio/d0.flac,transcripts/d0.json\nd1,audio/d1.flac,transcripts/d1.json\n")
    [p] = validate_corpus(c).report["problems"]  # labels required: the column is missing
    assert p["kind"] == "manifest_columns" and "label" in p["message"]
    res = validate_corpus(c, require_labels=False, min_docs_per_label=0)
    assert res.ok and [d.label for d in res.documents] == [None, None]


def test_a_transcript_without_words_is_reported_as_audio_only(corpus, tmp_path, caplog):
    c = _copy(corpus, tmp_path, "doc_id,label,audio,transcript\n"
              "d0,a,audio/d0.flac,transcripts/d0.json\nd1,a,audio/d1.flac,transcripts/d1.json\n")
    tr = json.loads((c / "transcripts/d1.json").read_text())
    for cue in tr["segments"]:
        cue["text"] = "  "
    (c / "transcripts/d1.json").write_text(json.dumps(tr))
    res = validate_corpus(c, require_labels=False)
    assert res.ok and res.report["documents_without_words"] == ["d1"]
    assert "document 'd1' (manifest row 3): no cue of d1.json has any text" in caplog.text
    assert "audio only" in caplog.text


def test_relative_and_absolute_paths_and_extra_columns(corpus, tmp_path):
    c = _copy(corpus, tmp_path, f" Doc_ID ,LABEL,audio,transcript,year\n"
              f"d0,a,{corpus / 'audio/d0.flac'},./transcripts/d0.json,1999\n"
              f"d1,a,audio/../audio/d1.flac,transcripts/d1.json,2000\n")
    res = validate_corpus(c, min_docs_per_label=1, require_labels=False)
    assert res.ok, res.report["problems"]
    assert res.documents[0].audio == (corpus / "audio/d0.flac").resolve()
    assert res.documents[1].audio == (c / "audio/d1.flac").resolve()


def test_duration_tolerance(corpus, tmp_path):
    from hilbert_pipeline.audio import audio_info

    dur, _, _ = audio_info(corpus / "audio/d0.flac")
    c = _copy(corpus, tmp_path, "doc_id,label,audio,transcript\nd0,a,audio/d0.flac,t.json\n")
    for extra, ok in [(0.3, True), (0.8, False)]:
        (c / "t.json").write_text(json.dumps({"segments": [
            {"start": 0.1, "end": dur + extra, "text": "x"}]}))
        res = validate_corpus(c, require_labels=False, min_docs_per_label=1)
        assert res.ok is ok
    assert validate_corpus(c, require_labels=False, min_docs_per_label=1,
                           duration_tolerance=1.0).ok


def test_unreadable_audio_does_not_hide_the_transcripts_own_timing_faults(corpus, tmp_path):
    c = _copy(corpus, tmp_path, "doc_id,label,audio,transcript\n"
              "d0,a,audio/d0.flac,transcripts/d0.json\nd1,a,audio/d1.flac,transcripts/d1.json\n"
              "d2,b,audio/d2.flac,transcripts/d2.json\nd3,b,audio/broken.flac,"
              "transcripts/overlap.json\n")
    (c / "audio" / "broken.flac").write_bytes(b"not a flac file" * 20)
    (c / "transcripts" / "overlap.json").write_text(json.dumps({"segments": [
        {"start": 0.2, "end": 2.0, "text": "one"}, {"start": 1.0, "end": 3.0, "text": "two"}]}))
    res = validate_corpus(c)
    kinds = sorted(p["kind"] for p in res.report["problems"] if p.get("row") == 5)
    assert kinds == ["audio_unreadable", "cue_overlap"]


def test_a_zero_byte_recording_says_so_and_the_error_says_once_what_to_do(corpus, tmp_path):
    c = _copy(corpus, tmp_path, "doc_id,label,audio,transcript\n"
              "d0,a,audio/d0.flac,transcripts/d0.json\nd1,a,audio/empty.flac,transcripts/d1.json\n"
              "d2,b,audio/empty.flac,transcripts/d2.json\nd3,b,audio/d3.flac,transcripts/d3.json\n")
    (c / "audio" / "empty.flac").write_bytes(b"")
    res = validate_corpus(c)
    bad = [p for p in res.report["problems"] if p["kind"] == "audio_unreadable"]
    assert [p["row"] for p in bad] == [3, 4]
    assert all("empty (0 bytes" in p["message"] for p in bad)
    with pytest.raises(CorpusValidationError) as err:
        load_corpus(c)
    msg = str(err.value)
    assert msg.count("[audio_unreadable]") == 2
    assert msg.count("What to do:") == 1 and msg.count("  - audio_unreadable: convert") == 1
    assert "exclude_invalid=true" in msg.split("What to do:")[1]
