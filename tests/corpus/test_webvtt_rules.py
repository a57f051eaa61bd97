"""The WebVTT reader against the W3C parsing rules.

Each case below is modelled on one of the web-platform-tests WebVTT file-parsing cases
(``webvtt/parsing/file-parsing/tests/`` in the wpt repository: signatures, header, timings, arrows,
ids, newlines, nulls, whitespace); the expected cues are what the rules (and those tests) give.
The files are written here, byte for byte, not fetched. docs/corpus.md reports the pass count.
"""

from __future__ import annotations

import pytest

from hilbert_pipeline.corpus.transcripts import TranscriptError, parse_transcript
from hilbert_pipeline.corpus.webvtt import parse_webvtt

T = "00:00:00.000 --> 00:00:01.000"


def _cue(text: str, start: float = 0.0, end: float = 1.0, ident: str = "") -> tuple:
    return ident, start, end, text


# name -> (file text, expected cues as (id, start, end, text)); None = not a WebVTT file
CASES: dict[str, tuple[str, list[tuple] | None]] = {
    # --- signatures
    "signature-only": ("WEBVTT", []),
    "signature-newline": ("WEBVTT\n", []),
    "signature-space-no-newline": ("WEBVTT ", []),
    "signature-tab-no-newline": ("WEBVTT\t", []),
    "signature-bom": ("\ufeffWEBVTT\n", []),
    "signature-bom-cue": (f"\ufeffWEBVTT\n\n{T}\ntext", [_cue("text")]),
    "signature-space-title": (f"WEBVTT a title\n\n{T}\ntext", [_cue("text")]),
    "signature-tab-title": (f"WEBVTT\ta title\n\n{T}\ntext", [_cue("text")]),
    "signature-timings": (f"WEBVTT {T}\ntext\n", []),
    "signature-glued": (f"WEBVTTX\n\n{T}\ntext", None),
    "signature-lowercase": (f"webvtt\n\n{T}\ntext", None),
    "signature-leading-space": (f" WEBVTT\n\n{T}\ntext", None),
    "signature-missing": (f"{T}\ntext\n", None),
    "signature-short": ("WEBV", None),
    # --- header
    "header-garbage": (f"WEBVTT\nKind: captions\nLanguage: en\n{T}\ntext", [_cue("text")]),
    "header-timings": (f"WEBVTT\n{T}\ntext", [_cue("text")]),
    "header-space": (f"WEBVTT\n \n{T}\ntext", [_cue("text")]),
    "header-tab": (f"WEBVTT\n\t\n{T}\ntext", [_cue("text")]),
    # --- timings
    "timings-end-before-start": (
        "WEBVTT\n\n00:00:00.000 --> 00:00:00.000\ntext1\n\n00:00:01.000 --> 00:00:00.999\ntext2"
        "\n\n00:01:00.000 --> 00:00:59.999\ntext3\n\n01:00:00.000 --> 00:59:59.999\ntext4\n",
        [_cue("text1", 0, 0), _cue("text2", 1, 0.999), _cue("text3", 60, 59.999),
         _cue("text4", 3600, 3599.999)]),
    "timings-omitted-hours": (
        "WEBVTT\n\n00:00.000 --> 00:00:01.000\ntext1\n\n00:00:00.000 --> 00:01.000\ntext2\n\n"
        "00:00.000 --> 00:01.000\ntext3\n",
        [_cue("text1"), _cue("text2"), _cue("text3")]),
    "timings-hours-any-width": (
        "WEBVTT\n\n0:00:00.000 --> 00:00:01.000\ntext1\n\n000:00:00.000 --> 00:00:01.000\ntext2\n"
        "\n00:00:00.000 --> 100:00:00.000\ntext3\n",
        [_cue("text1"), _cue("text2"), _cue("text3", 0, 360000)]),
    "timings-sixty": (
        "WEBVTT\n\n00:00:00.000 --> 60:00:01.000\ntext1\n\n60:00:00.000 --> 60:00:01.000\n"
        "text2\n\n00:60:00.000 --> 01:00:00.000\nbad minutes\n\n00:00:60.000 --> 00:01:00.000\n"
        "bad seconds\n\n60:00.000 --> 60:01.000\nminutes as hours need seconds\n",
        [_cue("text1", 0, 216001), _cue("text2", 216000, 216001)]),
    "timings-too-long": (
        "WEBVTT\n\n" + "".join(f"{t} --> 00:00:01.000\ninvalid\n\n" for t in (
            "00::00:00.000", "00:000:00.000", "00:00::00.000", "00:00:000.000", "00:00:00..000",
            "00:00:00.0000", "00:00.0000", "000:00.000", "00::00.000",
            "00:000.000", "00:00..000")) + "00:00:00.000 --> 00:00:01.000\nvalid\n",
        [_cue("valid")]),
    "timings-too-short": (
        "WEBVTT\n\n" + "".join(f"{t} --> 00:00:01.000\ninvalid\n\n" for t in (
            "0000:00.000", "00:0:00.000", "00:0000.000", "00:00:0.000", "00:00:00000",
            "00:00:00.00", "00:00:00.0", "00:00:00.", "00:00:00", "00:00:0", "00:00:", "00:00",
            "00:0", "00:", "00", "0", "", "0:00.000", "0000.000", "00:0.000", "00:00000",
            "00:00.00", "00:00.0", "00:00.", ":00.", "00.", ".")) +
        "00:00.000 --> 0:01.000\ninvalid end\n\n00:00:00.000 --> 00:00:01.000\nvalid\n",
        [_cue("valid")]),
    "timings-eof": ("WEBVTT\n\n00:00:00.000 -->", []),
    "timings-eof-no-text": (f"WEBVTT\n\n{T}", [_cue("")]),
    "timings-garbage": (
        "WEBVTT\n\n" + "".join(f"{t}\ngarbage\n\n" for t in (
            "x00:00:00.000 --> 00:00:01.000", "00:00:00.000x --> 00:00:01.000",
            "00:00:00.000 --> x00:00:01.000", "00:00:00,000 --> 00:00:01,000",
            "00:00:00.000 -> 00:00:01.000", "00:00:00.000 --> --> 00:00:01.000",
            "-00:00:00.000 --> 00:00:01.000", "00:00:00.000 --> 00:00:01:000")),
        []),
    "timings-settings-not-text": (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000 align:start position:0% line:90%\ntext\n"
        "\n00:00:01.000 --> 00:00:02.000x\ntext2\n",
        [_cue("text"), _cue("text2", 1, 2)]),
    # --- arrows: a line containing "-->" starts a cue, even right after cue text
    "arrows": (
        "WEBVTT\n\n-->\n" + T + "\ntext1\nfoo-->\n" + T + "\ntext2\n-->foo\n" + T + "\ntext3\n"
        "--->\n" + T + "\ntext4\n-->-->\n" + T + "\ntext5\n" + T + "\ntext6\n\n"
        "00:00:00.000 -a -->\n\n00:00:00.000 --a -->\n\n00:00:00.000 - -->\n\n"
        "00:00:00.000 -- -->\n",
        [_cue(f"text{k}") for k in range(1, 7)]),
    "arrows-rolling-no-blank": (
        "WEBVTT\n\n00:05:01.000 --> 00:05:04.080\nyeah what\n"
        "00:05:04.080 --> 00:05:05.069 align:start position:0%\nthis will happen\n",
        [_cue("yeah what", 301, 304.08), _cue("this will happen", 304.08, 305.069)]),
    # --- identifiers
    "ids": (
        "WEBVTT\n\n leading space\n" + T + "\ntext1\n\ntrailing space \n" + T + "\ntext2\n\n"
        "-- >\n" + T + "\ntext3\n\n->\n" + T + "\ntext4\n\n \n" + T + "\ntext5",
        [_cue("text1", ident=" leading space"), _cue("text2", ident="trailing space "),
         _cue("text3", ident="-- >"), _cue("text4", ident="->"), _cue("text5", ident=" ")]),
    "ids-two-lines-before-timing": (
        f"WEBVTT\n\nfirst\nsecond\n{T}\ntext\n\n{T}\nkept\n",
        [_cue("text"), _cue("kept")]),  # the two lines are a block of their own
    # --- newlines
    "newlines": (
        "WEBVTT\n\ncr\r" + T + "\rtext1\r\rlf\n" + T + "\ntext2\n\ncrlf\r\n" + T + "\r\ntext3"
        "\r\n\r\nlfcr\n\r" + "\n".join(["lfcr2", T, "text4"]) + "\n",
        [_cue("text1", ident="cr"), _cue("text2", ident="lf"), _cue("text3", ident="crlf"),
         _cue("text4", ident="lfcr2")]),
    "newlines-multi-line-text": (
        f"WEBVTT\r\n\r\n{T}\r\nline one\r\nline two\r\n", [_cue("line one\nline two")]),
    # --- nulls
    "nulls": (
        "WEBVTT\n\n" + T + "\ntext1\n\n\x00 (null in id)\n" + T + "\ntext2\n\n"
        "\x00 (null in cue data)\n" + T + "\n\x00text\x003\n\n"
        + T + " align:\x00start\ntext4\n\n" + T + " \x00align:end\ntext5\n",
        [_cue("text1"), _cue("text2", ident="\ufffd (null in id)"),
         _cue("\ufffdtext\ufffd3", ident="\ufffd (null in cue data)"), _cue("text4"),
         _cue("text5")]),
    # --- whitespace around the timings: space, tab, form feed are whitespace; VT is not
    "whitespace-chars": (
        "WEBVTT\n\nspaces\n   00:00:00.000    -->  00:00:01.000 \n   text1\n\ntabs\n"
        "\t\t\t00:00:00.000\t\t\t\t-->\t\t00:00:01.000\t\ntext2\n\nform feed\n"
        "\f\f00:00:00.000\f-->\f00:00:01.000\f\ntext3\n\nvertical tab\n"
        "\v00:00:00.000\v-->\v00:00:01.000\v\ntext4\n",
        [_cue("   text1", ident="spaces"), _cue("text2", ident="tabs"),
         _cue("text3", ident="form feed")]),
    # --- blocks that are not cues
    "note-style-region-blocks": (
        "WEBVTT\n\nNOTE a comment\nover lines\n\nSTYLE\n::cue { color: red }\n\n"
        "REGION\nid:fred width:40%\n\n" + T + "\ntext\n\nNOTE closing remark\n",
        [_cue("text")]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_webvtt_parsing_rules(name):
    text, expected = CASES[name]
    parsed = parse_webvtt(text)
    if expected is None:
        assert not parsed.valid_signature and parsed.cues == []
        return
    assert parsed.valid_signature
    got = [(c.id, c.start, c.end, c.text) for c in parsed.cues]
    assert len(got) == len(expected), got
    for g, e in zip(got, expected, strict=True):
        assert g[0] == e[0] and g[3] == e[3], (g, e)
        assert g[1] == pytest.approx(e[1], abs=1e-9) and g[2] == pytest.approx(e[2], abs=1e-9)


def test_rolling_timing_line_is_never_read_as_words(tmp_path):
    """The peer's YouTube file: a timing line right after cue text starts a new cue, and the
    previous cue's end time does not swallow the next one."""
    p = tmp_path / "yt.vtt"
    p.write_text("WEBVTT\nKind: captions\nLanguage: en\n\n"
                 "00:05:01.000 --> 00:05:04.080 align:start position:0%\nyeah what\n"
                 "00:05:04.080 --> 00:05:05.069 align:start position:0%\nthis will happen\n")
    cues = parse_transcript(p)
    assert [(c.start, c.end, c.text) for c in cues] == [
        (301.0, 304.08, "yeah what"), (304.08, 305.069, "this will happen")]
    assert not any("-->" in c.text or "align:" in c.text for c in cues)


def test_a_cue_the_rules_drop_with_its_words_is_reported(tmp_path):
    p = tmp_path / "bad.vtt"
    p.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nfine\n\n"
                 "00:00:01,000 --> 00:00:02,000\nwords a player would drop\n\n"
                 "foo --> bar\n00:00:02.000 --> 00:00:03.000\nalso fine\n")
    with pytest.raises(TranscriptError) as err:
        parse_transcript(p)
    probs = err.value.problems
    assert len(probs) == 1  # the arrow-containing identifier line loses nothing
    assert probs[0].line == 6 and "words a player would drop" in probs[0].message
    assert "[hh:]mm:ss.ttt" in probs[0].message


def test_a_vtt_without_signature_is_refused_with_advice(tmp_path):
    p = tmp_path / "noheader.vtt"
    p.write_text("1\n00:00:00,000 --> 00:00:01,000\nsubrip really\n")
    with pytest.raises(TranscriptError, match=r"first line must start with 'WEBVTT'.*\.srt"):
        parse_transcript(p)


def test_pass_count_matches_the_docs():
    """docs/corpus.md states how many rule cases the reader passes; keep it in step."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "corpus.md").read_text()
    assert f"{len(CASES)} of {len(CASES)} WebVTT parsing-rule cases" in doc
