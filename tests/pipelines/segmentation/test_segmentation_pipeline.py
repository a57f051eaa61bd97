"""The real ``kedro run --pipelines segmentation``: a good corpus, and one fault of every kind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from kedro_helpers import run_kedro

from hilbert_pipeline.audio import audio_info
from hilbert_pipeline.corpus import CorpusValidationError, validate_corpus
from hilbert_pipeline.corpus.validation import FIXES
from hilbert_pipeline.demo import synthesize_corpus, synthesize_sentence
from hilbert_pipeline.pipelines.segmentation.nodes import validate_corpus_node

GOOD = [
    {"doc_id": "g1", "label": "A", "sentences": ["The harbor opened at dawn.",
                                                 "Ships came in with grain."]},
    {"doc_id": "g2", "label": "A", "sentences": ["A quiet year for trade."]},
    {"doc_id": "g3", "label": "B", "sentences": ["Roads were built in the west."]},
    {"doc_id": "g4", "label": "B", "sentences": ["Schools opened in every county."]},
]




def _project(kedro_project: Path) -> Path:
    # Kedro checks that <project>/src exists; the package itself is imported from the editable
    # install, so an empty folder is enough for the throw-away copy.
    (kedro_project / "src").mkdir(exist_ok=True)
    return kedro_project


def _seg_file(path: Path, cues: list[tuple[float, float, str]]) -> str:
    path.write_text(json.dumps({"segments": [{"start": a, "end": b, "text": t}
                                             for a, b, t in cues]}))
    return f"transcripts/{path.name}"


def build_faulty_corpus(root: Path) -> tuple[Path, dict[str, tuple[int | None, str]]]:
    """The good documents plus one planted fault of every kind.

    Returns the corpus folder and, per fault kind, the expected manifest row (None for
    corpus-wide problems) and a fragment of the file the problem must name.
    """
    synthesize_corpus(root, GOOD, seed=1)
    dur, _, _ = audio_info(root / "audio" / "g1.flac")
    tr, au = root / "transcripts", root / "audio"
    (au / "garbage.wav").write_bytes(b"RIFF this is not audio at all" * 10)
    (tr / "empty.vtt").write_text("WEBVTT\n\n")
    (tr / "bad.srt").write_text("1\n00:00:00,500 --> 00:00:01,000\nok\n\n"
                                "2\n00:00:0x,000 --> 00:00:02,000\nbroken\n")
    (tr / "order.tsv").write_text("2.0\t3.0\tsecond\n0.5\t1.0\tfirst\n")
    clips = au / "clips"
    clips.mkdir()
    for k in (1, 2, 10):
        x, sr = synthesize_sentence(f"clip number {k}")
        sf.write(str(clips / f"c_{k}.wav"), x, sr)
    (tr / "clips.txt").write_text("clip number 1\nclip number 2\n")
    (tr / "plain.txt").write_text("no timestamps here\n")
    g1a, g1t = "audio/g1.flac", "transcripts/g1.json"
    rows = [  # doc_id, label, audio, transcript, split ; kind planted
        ("g1", "A", g1a, g1t, "train"),
        ("g2", "A", "audio/g2.flac", "transcripts/g2.json", "test"),
        ("g3", "B", "audio/g3.flac", "transcripts/g3.json", "train"),
        ("g4", "B", "audio/g4.flac", "transcripts/g4.json", "test"),
        ("f_audio_missing", "A", "audio/nowhere.flac", g1t, "train"),
        ("f_audio_unreadable", "A", "audio/garbage.wav", g1t, "train"),
        ("f_transcript_empty", "A", g1a, "transcripts/empty.vtt", "train"),
        ("f_transcript_unparsable", "A", g1a, "transcripts/bad.srt", "train"),
        ("f_transcript_missing", "A", g1a, "transcripts/nowhere.json", "train"),
        ("f_cue_order", "A", g1a, "transcripts/order.tsv", "train"),
        ("f_cue_overlap", "A", g1a,
         _seg_file(tr / "overlap.json", [(0.1, 1.5, "a"), (1.0, 2.0, "b")]), "train"),
        ("f_cue_end_before_start", "A", g1a,
         _seg_file(tr / "endstart.json", [(1.0, 1.0, "a")]), "train"),
        ("f_cue_beyond_audio", "A", g1a,
         _seg_file(tr / "beyond.json", [(0.5, dur + 3.0, "a")]), "train"),
        ("f_cue_negative", "A", g1a, _seg_file(tr / "neg.json", [(-1.0, 0.5, "a")]), "train"),
        ("f_clip_count_mismatch", "A", "audio/clips", "transcripts/clips.txt", "train"),
        ("f_transcript_format", "A", g1a, "transcripts/plain.txt", "train"),
        ("g1", "B", g1a, g1t, "train"),                         # doc_id_duplicate
        ("f_label_missing", "", g1a, g1t, "train"),
        ("f_label_too_few", "C", g1a, g1t, "test"),
        ("f_split_invalid", "A", g1a, g1t, "validation"),
        ("", "A", g1a, g1t, "train"),                           # doc_id_missing
    ]
    lines = ["doc_id,label,audio,transcript,split"] + [",".join(r) for r in rows]
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    row_of = {r[0]: i + 2 for i, r in enumerate(rows)}  # header is line 1
    expected = {
        "audio_missing": (row_of["f_audio_missing"], "nowhere.flac"),
        "audio_unreadable": (row_of["f_audio_unreadable"], "garbage.wav"),
        "transcript_empty": (row_of["f_transcript_empty"], "empty.vtt"),
        "transcript_unparsable": (row_of["f_transcript_unparsable"], "bad.srt"),
        "transcript_missing": (row_of["f_transcript_missing"], "nowhere.json"),
        "cue_order": (row_of["f_cue_order"], "order.tsv"),
        "cue_overlap": (row_of["f_cue_overlap"], "overlap.json"),
        "cue_end_before_start": (row_of["f_cue_end_before_start"], "endstart.json"),
        "cue_beyond_audio": (row_of["f_cue_beyond_audio"], "beyond.json"),
        "cue_negative": (row_of["f_cue_negative"], "neg.json"),
        "clip_count_mismatch": (row_of["f_clip_count_mismatch"], "clips.txt"),
        "transcript_format": (row_of["f_transcript_format"], "plain.txt"),
        "doc_id_duplicate": (18, "manifest.csv"),
        "label_missing": (row_of["f_label_missing"], "manifest.csv"),
        "label_too_few": (None, "manifest.csv"),
        "split_invalid": (row_of["f_split_invalid"], "manifest.csv"),
        "doc_id_missing": (row_of[""], "manifest.csv"),
    }
    return root, expected


def test_every_planted_fault_is_reported_and_the_run_fails(tmp_path, kedro_project, espeak):
    corpus, expected = build_faulty_corpus(tmp_path / "faulty")
    project = _project(kedro_project)
    proc = run_kedro(project, "run", "--pipelines", "segmentation", "--params",
                     f"corpus={corpus}", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    # one block: the message once, no traceback, and log lines never wrapped mid-path
    assert "Traceback" not in out and out.count("failed validation") == 1
    assert out.count("[label_too_few]") == 1 and "Error: corpus" in out
    assert "corpus_validation.json" in out and "HILBERT_DEBUG=1" in out
    # with HILBERT_DEBUG=1 the traceback is back
    debug = run_kedro(project, "run", "--pipelines", "segmentation", "--params",
                      f"corpus={corpus}", check=False, env={"HILBERT_DEBUG": "1"})
    assert debug.returncode != 0 and "CorpusValidationError" in debug.stdout + debug.stderr
    report = json.loads((project / "data/08_reporting/corpus_validation.json").read_text())
    assert report["ok"] is False and report["n_rows"] == 21
    kinds = {}
    for p in report["problems"]:
        kinds.setdefault(p["kind"], []).append(p)
        assert p["fatal"] is True and p["message"]
    assert set(kinds) == set(expected), set(kinds) ^ set(expected)
    for kind, (row, file_part) in expected.items():
        probs = kinds[kind]
        assert any(p.get("row") == row and file_part in p.get("file", "") for p in probs), \
            (kind, probs)
        assert f"[{kind}]" in out  # the error message lists every problem too
    # and says once per kind what to do about it
    advice = out[out.index("What to do:"):]
    for kind in set(expected) - {"label_too_few"}:  # that message carries its own remedy
        assert advice.count(f"  - {kind}: {FIXES[kind]}") == 1, kind
    assert "segmentation.exclude_invalid=true" in advice
    assert [p["cue"] for p in kinds["cue_order"]] == [2]
    assert [p["cue"] for p in kinds["transcript_unparsable"]] == [2]
    assert "'C' has 1 document(s) (" in kinds["label_too_few"][0]["message"]  # named
    # nothing half-written: no segment tables from the failed run
    assert not (project / "data/03_primary/segments.parquet").exists()
    assert not (project / "data/03_primary/documents.parquet").exists()


def test_good_corpus_runs_through_kedro(tmp_path, kedro_project, espeak):
    corpus = synthesize_corpus(tmp_path / "good", GOOD, transcript_format="vtt", seed=2)
    project = _project(kedro_project)
    run_kedro(project, "run", "--pipelines", "segmentation", "--params",
              f"corpus={corpus},segmentation.max_segments=1,segmentation.progress=false")
    segs = pd.read_parquet(project / "data/03_primary/segments.parquet")
    docs = pd.read_parquet(project / "data/03_primary/documents.parquet")
    report = json.loads((project / "data/08_reporting/corpus_validation.json").read_text())
    assert list(segs.columns) == ["doc_id", "seg_idx", "start", "end", "duration", "text",
                                  "audio_path", "audio_start", "audio_end", "speaker", "context"]
    assert list(docs.columns) == ["doc_id", "label", "group", "split", "n_segments",
                                  "n_segments_before_cap", "duration", "audio", "transcript"]
    assert list(docs["doc_id"]) == ["g1", "g2", "g3", "g4"] == list(segs["doc_id"])
    assert docs.set_index("doc_id")["n_segments_before_cap"].to_dict() == {
        "g1": 2, "g2": 1, "g3": 1, "g4": 1}  # g1's 2 sentences capped to 1
    assert (segs["seg_idx"] == 0).all()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in segs["audio_path"])
    assert report["ok"] and report["segmentation"]["n_documents_capped"] == 1
    assert report["labels"] == {"A": 2, "B": 2}


def test_missing_corpus_names_the_path_and_the_demo_command(tmp_path, kedro_project):
    project = _project(kedro_project)
    proc = run_kedro(project, "run", "--pipelines", "segmentation", check=False)
    assert proc.returncode != 0
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "data/01_raw/sotu" in out and "corpus folder not found" in out
    assert "kedro run --pipelines demo_data" in out
    report = json.loads((project / "data/08_reporting/corpus_validation.json").read_text())
    assert report["problems"][0]["kind"] == "corpus_missing"
    assert "kedro run --pipelines demo_data" in report["hint"]
    # another missing path: named, without the demo hint (the node, called directly)
    elsewhere = tmp_path / "no_such_corpus"
    with pytest.raises(CorpusValidationError) as err:
        validate_corpus_node(str(elsewhere), {"report_path": str(tmp_path / "r.json")})
    assert str(elsewhere) in str(err.value) and "demo_data" not in str(err.value)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["problems"][0]["file"] == str(elsewhere) and "hint" not in report


@pytest.fixture(autouse=True)
def _tests_on_path(monkeypatch):
    """Wide logs (no wrapping of paths by rich) so messages can be searched."""
    monkeypatch.setenv("COLUMNS", "400")


def test_library_report_matches_without_kedro(tmp_path, espeak):
    corpus, expected = build_faulty_corpus(tmp_path / "faulty")
    rep = validate_corpus(corpus).report
    assert {p["kind"] for p in rep["problems"]} == set(expected)
    shutil.rmtree(corpus)


def test_speaker_selection_through_kedro_params(tmp_path, kedro_project, espeak):
    """`--params segmentation.speakers.keep=[...]` keeps one speaker's turns; the validation
    report says what each document had and kept."""
    corpus = synthesize_corpus(tmp_path / "spk", GOOD, transcript_format="vtt", seed=2)
    for vtt in (corpus / "transcripts").glob("*.vtt"):
        lines = vtt.read_text().split("\n")
        k = 0
        for i in range(1, len(lines)):
            if "-->" in lines[i - 1]:  # the cue's text line: odd cues are the interviewer's
                lines[i] = f"<v {'Interviewer' if k % 2 else 'Participant'}>{lines[i]}"
                k += 1
        vtt.write_text("\n".join(lines))
    project = _project(kedro_project)
    run_kedro(project, "run", "--pipelines", "segmentation", "--params",
              f"corpus={corpus},segmentation.speakers.keep=[participant],"
              "segmentation.min_duration=null,segmentation.progress=false")
    segs = pd.read_parquet(project / "data/03_primary/segments.parquet")
    report = json.loads((project / "data/08_reporting/corpus_validation.json").read_text())
    assert set(segs["speaker"]) == {"Participant"}
    assert list(segs["text"][segs.doc_id == "g1"]) == ["The harbor opened at dawn."]
    g1 = report["speakers"]["g1"]["speakers"]
    assert g1["Interviewer"]["cues"] == 1 and g1["Interviewer"]["kept"] is False
    assert report["options"]["speakers"]["keep"] == ["participant"]
