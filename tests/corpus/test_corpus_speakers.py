"""Speakers: every format that carries one, the ``keep`` filter, its report, rolling captions.

A real two-voice interview is synthesised once with espeak-ng (interviewer and participant take
turns); its true timestamps are then written in each transcript format by the tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hilbert_pipeline.corpus import SegmentationConfig, segment_corpus, validate_corpus
from hilbert_pipeline.corpus.speakers import SpeakerOptions, SpeakerOptionsError, dedupe_rolling
from hilbert_pipeline.corpus.transcripts import parse_transcript
from hilbert_pipeline.demo import synthesize_corpus

NO_RULES = SegmentationConfig(min_duration=None, max_duration=None, max_segments=None)
TURNS = [("Ellie", "How are you doing today?"),
         ("Participant", "I have been sleeping badly for weeks."),
         ("Ellie", "What keeps you awake at night?"),
         ("Participant", "Mostly worries about my work."),
         ("Participant", "And my family far away.")]
VOICE = {"Ellie": {"voice": "en-us", "pitch": 70}, "Participant": {"voice": "en-gb", "pitch": 30}}


@pytest.fixture(scope="module")
def interview(tmp_path_factory, espeak) -> dict:
    """The recording and the true cue times of a five-turn, two-voice interview."""
    root = synthesize_corpus(
        tmp_path_factory.mktemp("interview") / "c",
        [{"doc_id": "int1", "label": "a", "sentences": [t for _, t in TURNS],
          "styles": [VOICE[s] for s, _ in TURNS]}], transcript_format="json", seed=5)
    segs = json.loads((root / "transcripts" / "int1.json").read_text())["segments"]
    return {"audio": root / "audio" / "int1.flac",
            "cues": [(s["start"], s["end"], who, s["text"])
                     for s, (who, _) in zip(segs, TURNS, strict=True)]}


def _corpus(tmp_path: Path, interview: dict, name: str, text: str, n_docs: int = 1) -> Path:
    (tmp_path / "t").mkdir(exist_ok=True)
    rows = ["doc_id,label,audio,transcript"]
    for k in range(n_docs):
        shutil.copy(interview["audio"], tmp_path / f"rec{k}.flac")
        (tmp_path / "t" / f"{k}_{name}").write_text(text)
        rows.append(f"d{k},{'ab'[k % 2]},rec{k}.flac,t/{k}_{name}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def _clock(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _vtt(cues) -> str:
    return "WEBVTT\n\n" + "".join(f"{_clock(a)} --> {_clock(b)}\n<v {who}>{text}</v>\n\n"
                                  for a, b, who, text in cues)


def _daic(cues, sep: str) -> str:
    head = sep.join(["start_time", "stop_time", "speaker", "value"])
    return head + "\n" + "".join(sep.join([f"{a:.3f}", f"{b:.3f}", who, text]) + "\n"
                                 for a, b, who, text in cues)


def _cha(cues) -> str:
    code = {"Ellie": "INV", "Participant": "PAR"}
    lines = ["@UTF8", "@Begin", "@Languages:\teng",
             "@Participants:\tPAR Participant, INV Investigator",
             "@ID:\teng|Pitt|PAR|||||Participant|||"]
    for a, b, who, text in cues:
        words = text.rstrip(".?")
        mark = text[-1]
        lines.append(f"*{code[who]}:\t{words} &=laughs [//] (.) {mark} "
                     f"\x15{int(a * 1000)}_{int(b * 1000)}\x15")
        lines.append(f"%mor:\tpro|I v|have {code[who]} .")
        lines.append("%gra:\t1|2|SUBJ 2|0|ROOT")
    lines.append("@End")
    return "\n".join(lines) + "\n"


def _whisperx(cues) -> str:
    return json.dumps({"segments": [{"start": a, "end": b, "text": f" {text}", "speaker": who}
                                    for a, b, who, text in cues], "language": "en"})


FORMATS = {"t.vtt": _vtt, "t.tsv": lambda c: _daic(c, "\t"), "t.csv": lambda c: _daic(c, ","),
           "t.json": _whisperx}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_speaker_of_every_cue_from_each_format(tmp_path, interview, name):
    p = tmp_path / name
    p.write_text(FORMATS[name](interview["cues"]))
    cues = parse_transcript(p)
    assert [(c.speaker, c.text) for c in cues] == [(w, t) for _, _, w, t in interview["cues"]]
    assert [c.start for c in cues] == pytest.approx([a for a, *_ in interview["cues"]], abs=1e-3)


def test_chat_speakers_roles_bullets_and_dependent_tiers(tmp_path, interview):
    p = tmp_path / "t.cha"
    p.write_text(_cha(interview["cues"]))
    cues = parse_transcript(p)
    assert [c.speaker for c in cues] == ["INV", "PAR", "INV", "PAR", "PAR"]
    assert [c.role for c in cues] == ["Investigator", "Participant", "Investigator",
                                      "Participant", "Participant"]
    assert [c.text for c in cues] == [t for *_, t in interview["cues"]]  # codes gone, no %mor
    assert [c.start for c in cues] == pytest.approx([int(a * 1000) / 1000
                                                     for a, *_ in interview["cues"]])
    bad = tmp_path / "nobullet.cha"
    bad.write_text("@Begin\n@Participants:\tPAR Participant\n*PAR:\thello there .\n@End\n")
    with pytest.raises(Exception, match=r"line 3.*no time bullet"):
        parse_transcript(bad)


@pytest.mark.parametrize("keep", [["Participant"], ["participant"]])
def test_keep_drops_exactly_the_other_speakers_and_reports_them(tmp_path, interview, keep):
    root = _corpus(tmp_path, interview, "t.vtt", _vtt(interview["cues"]))
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False,
                          speakers={"keep": keep})
    assert res.ok, res.report["problems"]
    segs, _, stats = segment_corpus(res.documents, NO_RULES)
    want = [(a, t) for a, _, w, t in interview["cues"] if w == "Participant"]
    assert list(segs["text"]) == [t for _, t in want]
    assert segs["start"].to_numpy() == pytest.approx([a for a, _ in want], abs=1e-3)
    assert set(segs["speaker"]) == {"Participant"}
    rep = res.report["speakers"]["d0"]
    assert rep["speakers"]["Ellie"]["cues"] == 2 and rep["speakers"]["Ellie"]["kept"] is False
    assert rep["speakers"]["Participant"]["cues"] == 3 and rep["speakers"]["Participant"]["kept"]
    ellie_s = sum(b - a for a, b, w, _ in interview["cues"] if w == "Ellie")
    assert rep["speakers"]["Ellie"]["seconds"] == pytest.approx(ellie_s, abs=5e-3)
    assert rep["kept_cues"] == 3
    assert stats["speakers"] == {"Participant": {"segments": 3, "seconds": pytest.approx(
        rep["kept_seconds"], abs=1e-3)}}


def test_keep_by_chat_role_or_code_and_all_keeps_everything(tmp_path, interview):
    root = _corpus(tmp_path, interview, "t.cha", _cha(interview["cues"]))
    for keep in (["Participant"], ["PAR"]):
        res = validate_corpus(root, min_docs_per_label=1, require_labels=False,
                              speakers={"keep": keep})
        segs = segment_corpus(res.documents, NO_RULES)[0]
        assert list(segs["speaker"]) == ["PAR"] * 3
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False)
    segs = segment_corpus(res.documents, NO_RULES)[0]
    assert list(segs["speaker"]) == ["INV", "PAR", "INV", "PAR", "PAR"]


def test_segments_never_merge_two_speakers(tmp_path, interview):
    root = _corpus(tmp_path, interview, "t.vtt", _vtt(interview["cues"]))
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False)
    merge_all = SegmentationConfig(min_duration=30.0, max_duration=None, max_merge_gap=None,
                                   max_segments=None)
    segs = segment_corpus(res.documents, merge_all)[0]
    # each run of one speaker becomes one segment; the two Participant turns at the end merge
    assert list(segs["speaker"]) == ["Ellie", "Participant", "Ellie", "Participant"]
    assert segs["text"].iloc[-1] == "Mostly worries about my work. And my family far away."


def test_context_prefixes_the_other_speakers_turn(tmp_path, interview):
    root = _corpus(tmp_path, interview, "t.tsv", _daic(interview["cues"], "\t"))
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False,
                          speakers={"keep": ["Participant"], "context": True})
    segs = segment_corpus(res.documents, NO_RULES)[0]
    assert list(segs["context"]) == ["How are you doing today?",
                                     "What keeps you awake at night?", ""]
    assert segs["text"].iloc[0] == ("How are you doing today? I have been sleeping badly for "
                                    "weeks.")


def test_a_document_left_without_segments_is_reported_never_dropped(tmp_path, interview):
    only_ellie = [c for c in interview["cues"] if c[2] == "Ellie"]
    root = _corpus(tmp_path, interview, "t.vtt", _vtt(interview["cues"]), n_docs=2)
    (root / "t" / "1_t.vtt").write_text(_vtt(only_ellie))
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False,
                          speakers={"keep": ["Participant"]})
    assert not res.ok
    [p] = res.report["problems"]
    assert p["kind"] == "speaker_none_kept" and p["doc_id"] == "d1"
    assert "Ellie (2 cues)" in p["message"]
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False, exclude_invalid=True,
                          speakers={"keep": ["Participant"]})
    assert res.ok and [d.doc_id for d in res.documents] == ["d0"]
    assert [e["doc_id"] for e in res.report["excluded"]] == ["d1"]


def test_cues_of_different_speakers_may_overlap_one_speakers_may_not(tmp_path, interview):
    (a0, b0, w0, t0), (a1, b1, w1, t1) = interview["cues"][:2]
    crosstalk = [(a0, b0, w0, t0), (b0 - 0.3, b1, w1, t1)]
    root = _corpus(tmp_path, interview, "t.vtt", _vtt(crosstalk))
    assert validate_corpus(root, min_docs_per_label=1, require_labels=False).ok
    same = [(a0, b0, w0, t0), (b0 - 0.3, b1, w0, t1)]
    (root / "t" / "0_t.vtt").write_text(_vtt(same))
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False)
    assert [p["kind"] for p in res.report["problems"]] == ["cue_overlap"]
    assert "same speaker 'Ellie'" in res.report["problems"][0]["message"]


def test_formats_without_speakers_are_unchanged(tmp_path, interview):
    plain = "".join(f"{a:.3f}\t{b:.3f}\t{t}\n" for a, b, _, t in interview["cues"])
    root = _corpus(tmp_path, interview, "t.tsv", plain)
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False)
    segs = segment_corpus(res.documents, NO_RULES)[0]
    assert list(segs["speaker"]) == [""] * 5 and list(segs["context"]) == [""] * 5
    assert res.report["speakers"]["d0"]["speakers"] == {
        "(none)": {"cues": 5, "seconds": pytest.approx(
            sum(b - a for a, b, *_ in interview["cues"]), abs=5e-3), "kept": True}}


def test_clip_names_give_speakers_with_a_configurable_pattern(tmp_path, espeak):
    docs = [{"doc_id": "call", "label": "a", "sentences": ["Revenue grew this quarter.",
                                                            "Thank you for the question.",
                                                            "Margins were stable."]}]
    root = synthesize_corpus(tmp_path / "c", docs, transcript_format="txt", seed=1)
    folder = root / "audio" / "call"
    names = ["Jane_Doe_1_1", "Ken_2_1", "Lee_3_1"]  # natural order of names = order of lines
    for clip, name in zip(sorted(folder.iterdir()), names, strict=True):
        clip.rename(folder / f"{name}{clip.suffix}")
    opts = {"keep": ["Jane_Doe", "lee"], "clip_pattern": r"^(?P<speaker>.+?)_\d+_\d+$"}
    res = validate_corpus(root, min_docs_per_label=1, require_labels=False, speakers=opts)
    assert res.ok, res.report["problems"]
    segs = segment_corpus(res.documents, NO_RULES)[0]
    assert list(segs["speaker"]) == ["Jane_Doe", "Lee"]
    assert list(segs["text"]) == ["Revenue grew this quarter.", "Margins were stable."]
    assert [Path(p).stem for p in segs["audio_path"]] == ["Jane_Doe_1_1", "Lee_3_1"]
    assert res.report["speakers"]["call"]["speakers"]["Ken"]["kept"] is False


def test_rolling_captions_give_each_sentence_once(tmp_path):
    """yt-dlp's YouTube auto-captions: each cue repeats the previous line, 10 ms hold cues."""
    p = tmp_path / "yt.vtt"
    p.write_text(
        "WEBVTT\nKind: captions\nLanguage: en\n\n"
        "00:00:00.000 --> 00:00:02.310 align:start position:0%\n \n"
        "hello<00:00:00.320><c> world</c><00:00:00.800><c> again</c>\n\n"
        "00:00:02.310 --> 00:00:02.320 align:start position:0%\nhello world again\n \n\n"
        "00:00:02.320 --> 00:00:05.000 align:start position:0%\nhello world again\n"
        "this<00:00:02.800><c> is</c><00:00:03.100><c> new</c>\n\n"
        "00:00:05.000 --> 00:00:05.010 align:start position:0%\nthis is new\n \n\n"
        "00:00:05.010 --> 00:00:07.000 align:start position:0%\nthis is new\n"
        "and<00:00:05.500><c> the</c><c> end</c>\n")
    cues, info = dedupe_rolling(parse_transcript(p))
    assert [c.text for c in cues] == ["hello world again", "this is new", "and the end"]
    assert info == {"detected": True, "applied": True, "cues_removed": 2, "lines_removed": 4}
    assert [(c.start, c.end) for c in cues] == [(0.0, 2.31), (2.32, 5.0), (5.01, 7.0)]
    kept, off = dedupe_rolling(parse_transcript(p), False)
    assert len(kept) == 5 and off["detected"] and not off["applied"]
    plain = tmp_path / "plain.vtt"
    plain.write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nYes.\n\n00:01.000 --> 00:02.000\nYes.\n"
                     "\n00:02.000 --> 00:03.000\nNo.\n\n00:03.000 --> 00:04.000\nMaybe.\n\n"
                     "00:04.000 --> 00:05.000\nSure.\n\n00:05.000 --> 00:06.000\nFine.\n\n"
                     "00:06.000 --> 00:07.000\nGood.\n")
    cues, info = dedupe_rolling(parse_transcript(plain))
    assert len(cues) == 7 and not info["detected"]  # one repeat in seven is not rolling


def test_a_sentence_said_again_in_its_own_cue_is_speech_not_a_rolling_caption(tmp_path):
    """Half the cues repeat the one before, each a whole utterance of real length (a patient
    who answers "I don't know." three times): nothing is detected and nothing is removed."""
    p = tmp_path / "answers.vtt"
    said = ["I sleep badly.", "I don't know.", "I don't know.", "I don't know.", "Maybe.",
            "Maybe."]
    p.write_text("WEBVTT\n\n" + "".join(f"00:00:0{i}.000 --> 00:00:0{i}.900\n{t}\n\n"
                                         for i, t in enumerate(said)))
    cues, info = dedupe_rolling(parse_transcript(p))
    assert [c.text for c in cues] == said
    assert info == {"detected": False, "applied": False, "cues_removed": 0, "lines_removed": 0}


@pytest.mark.parametrize("bad, match", [
    ({"keep": 3}, "keep must be 'all' or a list"),
    ({"keep": ["P"], "clip_pattern": "(unclosed"}, "not a regular expression"),
    ({"clip_pattern": "^(.+)_"}, r"named group \(\?P<speaker>"),
    ({"context": "yes"}, "context must be true or false"),
    ({"kepp": ["P"]}, "unknown key"),
])
def test_bad_speaker_options_are_clear_errors(bad, match):
    with pytest.raises(SpeakerOptionsError, match=match):
        SpeakerOptions.from_params(bad)
