"""Transcript parsers (docs/corpus.md): WebVTT, SubRip, Whisper/WhisperX-style JSON, TSV/CSV tables
(DAIC-WOZ style), CHAT ``.cha`` (TalkBank) and one-line-per-clip TXT.

WebVTT is read by the W3C parsing rules (``corpus.webvtt``); every other format by its own
conventions. Each cue carries its ``speaker`` when the format has one (WebVTT ``<v Name>`` spans,
a ``speaker`` column or field, CHAT ``*PAR:`` tiers), else None.

Each parser reads the whole file, collects *every* problem it finds (with the cue number and line)
instead of stopping at the first, and raises one ``TranscriptError`` listing them. Timing checks
that need the audio (order, overlap, duration) live in ``validation``; the parsers only check that
each cue is well-formed.

Tolerated on input (real subtitle files do all of these): a UTF-8 byte-order mark, CRLF or CR line
ends, cue identifiers, ``hh:`` omitted (``mm:ss.mmm``), ``,`` or ``.`` before the milliseconds,
cue settings after the end time, multi-line cue text (joined with a space), markup tags such as
``<v Speaker>``, ``<i>``, ``<c.red>`` or inline ``<00:00:01.000>`` timestamps (removed), SRT
``{\\an8}`` position codes (removed), HTML entities (decoded), and WebVTT ``NOTE``/``STYLE``/
``REGION`` blocks (skipped). WebVTT itself is strict where the rules are: a timing line the rules
reject is reported (a player would drop that cue and its words), never guessed.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from hilbert_pipeline.corpus.webvtt import parse_webvtt
from hilbert_pipeline.errors import UserError

TIMED_EXTENSIONS = (".vtt", ".srt", ".json", ".tsv", ".csv", ".cha")
CLIP_EXTENSIONS = (".txt",)
TRANSCRIPT_EXTENSIONS = TIMED_EXTENSIONS + CLIP_EXTENSIONS


@dataclass(frozen=True)
class Cue:
    """One transcript unit: ``start``/``end`` in seconds (None for clip lines), its text.

    ``index`` is the 1-based cue (or clip line) number, ``line`` the 1-based line in the file.
    ``speaker``: who speaks, when the format says (a name or a code such as ``PAR``), else None;
    ``role``: the speaker's role where the format gives one (CHAT ``@Participants``: e.g.
    ``Participant``, ``Investigator``). ``lines``: the cue's text lines, cleaned, before they
    were joined (rolling-caption de-duplication compares them).
    """

    index: int
    start: float | None
    end: float | None
    text: str
    line: int | None = None
    speaker: str | None = None
    role: str | None = None
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Where a problem is (file, manifest row, cue) and what is wrong."""

    kind: str
    message: str
    file: str | None = None
    row: int | None = None
    cue: int | None = None
    line: int | None = None
    doc_id: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"manifest row {self.row}")
        if self.doc_id is not None:
            where.append(f"doc {self.doc_id!r}")
        if self.cue is not None:
            where.append(f"cue {self.cue}")
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"[{self.kind}] {', '.join(where)}: {self.message}" if where else \
            f"[{self.kind}] {self.message}"


class TranscriptError(UserError):
    """A transcript cannot be parsed; ``problems`` lists every defect found in the file."""

    def __init__(self, path: str | Path, problems: list[Problem]):
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in transcript\n{lines}")


def _finish(path: Path, cues: list[Cue], problems: list[Problem], empty: str) -> list[Cue]:
    """The cues, or one ``TranscriptError`` listing every problem (``empty`` when there are
    neither cues nor problems)."""
    if not cues and not problems:
        problems.append(Problem("transcript_empty", empty, file=str(path)))
    if problems:
        raise TranscriptError(path, problems)
    return cues


def _read_text(path: Path) -> str:
    """The transcript's text (every parser reads it here): UTF-8, newlines normalised; an empty
    or blank file is ``transcript_empty``."""
    raw = path.read_bytes()
    if not raw.strip():
        raise TranscriptError(path, [Problem("transcript_empty", "the file is empty",
                                             file=str(path))])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TranscriptError(path, [Problem("transcript_unreadable", f"not UTF-8 text ({exc})",
                                             file=str(path))]) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?$")
_TIMING = re.compile(r"^\s*(\S+)\s*-->\s*(\S+)(?:\s+.*)?$")
_TAG = re.compile(r"<[^>]*>")
_ASS = re.compile(r"\{\\[^}]*\}")


def parse_clock(value: str) -> float:
    """``[hh:]mm:ss[.,mmm]`` → seconds. Raises ValueError on anything else."""
    m = _CLOCK.match(value.strip())
    if not m:
        raise ValueError(f"bad timestamp {value!r} (expected [hh:]mm:ss.mmm)")
    h, mnt, s, frac = m.groups()
    if int(mnt) >= 60 or int(s) >= 60:
        raise ValueError(f"bad timestamp {value!r} (minutes and seconds must be < 60)")
    millis = int(frac.ljust(3, "0")) if frac else 0
    return int(h or 0) * 3600 + int(mnt) * 60 + int(s) + millis / 1000.0


def clean_cue_text(lines: list[str]) -> str:
    """Join cue lines, strip markup tags/position codes, decode entities, normalise spaces."""
    text = " ".join(lines)
    text = _ASS.sub("", _TAG.sub("", text))
    return " ".join(html.unescape(text).split())


_VOICE = re.compile(r"<v(?:\.[^\s>]*)?[ \t\f]+([^>]*)>")


def voice_of(raw: str) -> str | None:
    """The speaker of a WebVTT cue: the annotation of its first ``<v Name>`` span, or None."""
    m = _VOICE.search(raw)
    if not m:
        return None
    name = " ".join(html.unescape(m.group(1)).split())
    return name or None


def _subtitle_cue(index: int, start: float, end: float, raw_lines: list[str], line: int
                  ) -> Cue:
    """A subtitle cue from its raw text lines: each line cleaned (empty ones dropped), the
    text their join, the speaker the first ``<v Name>`` span's."""
    lines = tuple(t for t in (clean_cue_text([ln]) for ln in raw_lines) if t)
    return Cue(index, start, end, " ".join(lines), line,
               speaker=voice_of("\n".join(raw_lines)), lines=lines)


def parse_vtt(path: str | Path) -> list[Cue]:
    """Parse a WebVTT file by the W3C parsing rules (``corpus.webvtt``).

    Problems: a file that does not start with ``WEBVTT``; a cue whose timing line the rules
    reject while the block carries text (a player would drop that text: the timing must be
    fixed); no cue at all. A rejected ``-->`` line without text (an identifier that contains an
    arrow, a stray timing line) loses nothing and is not a problem, as in a player."""
    path = Path(path)
    parsed = parse_webvtt(_read_text(path))
    if not parsed.valid_signature:
        raise TranscriptError(path, [Problem(
            "transcript_unparsable", "not a WebVTT file: the first line must start with "
            "'WEBVTT' (followed by a space, a tab or the line end); a SubRip file should be "
            "named .srt", file=str(path), line=1)])
    problems = []
    for d in parsed.discarded:
        text = clean_cue_text(d.text.split("\n"))
        if text:
            problems.append(Problem(
                "transcript_unparsable",
                f"timing line {d.timing.strip()[:60]!r} is not valid WebVTT (timestamps are "
                "[hh:]mm:ss.ttt: two-digit minutes and seconds, '.' and three digits); a player "
                f"drops this cue and its text {text[:40]!r}; fix the timestamps",
                file=str(path), line=d.line))
    cues = [_subtitle_cue(k, c.start, c.end, c.text.split("\n") if c.text else [], c.line)
            for k, c in enumerate(parsed.cues, 1)]
    return _finish(path, cues, problems, "no cues found")


def parse_srt(path: str | Path) -> list[Cue]:
    """Parse a SubRip (``.srt``) file into cues (SubRip has no formal grammar: the common
    conventions are accepted, see the module docstring)."""
    path = Path(path)
    text = _read_text(path)
    lines = text.split("\n")
    problems: list[Problem] = []
    cues: list[Cue] = []
    i, n = 0, len(lines)
    first_block = True
    while i < n:
        while i < n and not lines[i].strip():
            i += 1
        if i >= n:
            break
        start_line = i
        block = []
        while i < n and lines[i].strip():
            block.append(lines[i])
            i += 1
        head = block[0].strip()
        if first_block and head.startswith("WEBVTT"):
            first_block = False
            continue
        first_block = False
        if head.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in head:
            continue
        timing_at = next((k for k, ln in enumerate(block) if "-->" in ln), None)
        cue_no = len(cues) + 1
        if timing_at is None:
            problems.append(Problem("transcript_unparsable",
                                    f"block without a '-->' timing line: {head[:60]!r}",
                                    file=str(path), cue=cue_no, line=start_line + 1))
            continue
        if timing_at > 1:
            problems.append(Problem("transcript_unparsable",
                                    "cue has more than one line before its timing line "
                                    "(a missing blank line between cues?)",
                                    file=str(path), cue=cue_no, line=start_line + 1))
            continue
        t_line = start_line + timing_at + 1
        m = _TIMING.match(block[timing_at])
        try:
            if not m:
                raise ValueError(f"bad timing line {block[timing_at].strip()!r}")
            start, end = parse_clock(m.group(1)), parse_clock(m.group(2))
        except ValueError as exc:
            problems.append(Problem("transcript_unparsable", str(exc), file=str(path),
                                    cue=cue_no, line=t_line))
            # keep numbering aligned with the file: a bad cue still counts as a cue
            cues.append(Cue(cue_no, math.nan, math.nan, "", t_line))
            continue
        cues.append(_subtitle_cue(cue_no, start, end, block[timing_at + 1:], t_line))
    return _finish(path, cues, problems, "no cues found")


def parse_json(path: str | Path) -> list[Cue]:
    """Parse a Whisper-style ``{"segments": [{"start", "end", "text"}, ...]}`` file; a
    segment's ``speaker`` field (WhisperX after diarisation) is its speaker."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptError(path, [Problem("transcript_unparsable", f"invalid JSON: {exc.msg}",
                                             file=str(path), line=exc.lineno)]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("segments"), list):
        raise TranscriptError(path, [Problem(
            "transcript_unparsable", 'expected an object with a "segments" list '
            '(Whisper style: {"segments": [{"start": s, "end": s, "text": "..."}]})',
            file=str(path))])
    problems, cues = [], []
    for k, seg in enumerate(data["segments"], 1):
        if not isinstance(seg, dict):
            problems.append(Problem("transcript_unparsable", "segment is not an object",
                                    file=str(path), cue=k))
            continue
        bad = []
        vals = {}
        for key in ("start", "end"):
            v = seg.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                bad.append(f"{key}={v!r} is not a finite number")
            else:
                vals[key] = float(v)
        txt = seg.get("text", "")
        if txt is None:
            txt = ""
        if not isinstance(txt, str):
            bad.append(f"text={txt!r} is not a string")
        spk = seg.get("speaker")
        if spk is not None and not isinstance(spk, str | int):
            bad.append(f"speaker={spk!r} is not a string")
        if bad:
            problems.append(Problem("transcript_unparsable", "; ".join(bad), file=str(path), cue=k))
            continue
        text = " ".join(txt.split())
        cues.append(Cue(k, vals["start"], vals["end"], text,
                        speaker=str(spk).strip() or None if spk is not None else None,
                        lines=(text,) if text else ()))
    if not data["segments"]:
        problems.append(Problem("transcript_empty", '"segments" is empty', file=str(path)))
    if problems:
        raise TranscriptError(path, problems)
    return cues


_HEADER_START = {"start", "begin", "start_time", "starttime", "start_s", "onset", "from", "t0"}
_HEADER_END = {"end", "stop", "end_time", "endtime", "end_s", "offset", "to", "t1", "stop_time",
               "stoptime"}
_HEADER_TEXT = {"text", "value", "transcript", "utterance", "sentence", "words", "content"}
_HEADER_SPEAKER = {"speaker", "spk", "speaker_id", "speaker_name", "participant", "role"}


def _table_header(fields: list[str]) -> dict[str, int] | None:
    """Column positions when ``fields`` is clearly a header (a start and an end column name);
    else None."""
    names = [f.strip().lower() for f in fields]
    pos: dict[str, int] = {}
    for k, name in enumerate(names):
        for key, known in (("start", _HEADER_START), ("end", _HEADER_END),
                           ("text", _HEADER_TEXT), ("speaker", _HEADER_SPEAKER)):
            if name in known and key not in pos:
                pos[key] = k
    return pos if "start" in pos and "end" in pos else None


def parse_table(path: str | Path) -> list[Cue]:
    """Parse a transcript table: ``.tsv`` (tab-separated) or ``.csv`` (comma-separated, quoted
    fields as the csv module reads them), seconds.

    With a header line (a start and an end column name, e.g. DAIC-WOZ's ``start_time
    stop_time speaker value``) the columns are found by name: start, end, text (``text``,
    ``value``, ``utterance``, ...) and optionally ``speaker``. Without one, the columns are
    ``start, end, text`` (a TSV's text may contain further tabs). A header-like line anywhere
    but first, or any other non-numeric time, is an error. Blank lines are ignored."""
    import csv
    import io

    path = Path(path)
    delim = "," if path.suffix.lower() == ".csv" else "\t"
    rows = list(csv.reader(io.StringIO(_read_text(path)), delimiter=delim,
                           quoting=csv.QUOTE_MINIMAL if delim == "," else csv.QUOTE_NONE))
    problems, cues = [], []
    header: dict[str, int] | None = None
    what = "start,end,text" if delim == "," else "start<TAB>end<TAB>text"
    for ln, fields in enumerate(rows, 1):
        if not any(f.strip() for f in fields):
            continue
        if not cues and not problems and header is None:
            header = _table_header(fields)
            if header is not None:
                continue
        cue_no = len(cues) + 1
        if header is not None:
            get = {k: (fields[i] if i < len(fields) else "") for k, i in header.items()}
            if "text" in header and header["text"] == max(header.values()):
                get["text"] = delim.join(fields[header["text"]:])  # a TSV text with tabs
            t_start, t_end = get["start"], get["end"]
            text, speaker = get.get("text", ""), get.get("speaker")
        elif len(fields) < 2:
            problems.append(Problem("transcript_unparsable",
                                    f"expected {what}, got {delim.join(fields)[:60]!r}",
                                    file=str(path), cue=cue_no, line=ln))
            cues.append(Cue(cue_no, math.nan, math.nan, "", ln))
            continue
        else:
            t_start, t_end = fields[0], fields[1]
            text, speaker = delim.join(fields[2:]), None
        try:
            start, end = float(t_start), float(t_end)
            if not (math.isfinite(start) and math.isfinite(end)):
                raise ValueError
        except ValueError:
            problems.append(Problem("transcript_unparsable",
                                    f"start/end must be numbers of seconds, got "
                                    f"{t_start[:20]!r} and {t_end[:20]!r}",
                                    file=str(path), cue=cue_no, line=ln))
            cues.append(Cue(cue_no, math.nan, math.nan, "", ln))
            continue
        text = " ".join(text.split())
        speaker = " ".join(speaker.split()) if speaker else None
        cues.append(Cue(cue_no, start, end, text, ln, speaker=speaker or None,
                        lines=(text,) if text else ()))
    return _finish(path, cues, problems, "no lines")


_BULLET = re.compile(r"[\x15\u00b7](\d+)_(\d+)[\x15\u00b7]")
_CHAT_DROP = re.compile(
    r"\[[^\]]*\]"            # [//] [: target] [*] [+ gram] annotations
    r"|&=\S+|&\+\S+"          # &=laughs (events), &+fr (fragments)
    r"|\(\.+\)"               # (.) (..) (...) pauses
    r"|(?<!\S)(?:xxx|yyy|www)(?!\S)"  # unintelligible / untranscribed
    r"|(?<!\S)0\S+"           # 0word: omitted words
    r"|(?<!\S)\+\S*"          # +... +/. +//. terminators and linkers
    r"|[‡„⌈⌉⌊⌋↑↓≠∬]")


def clean_chat(text: str) -> str:
    """The words of a CHAT utterance: codes, events, pauses, omitted and unintelligible words
    removed; ``&-uh`` (filled pause) kept as ``uh``; ``(be)cause`` as ``because``; ``word@l`` as
    ``word``; ``<`` ``>`` scope marks and ``:`` lengthening removed; ``_`` joins become spaces."""
    text = _BULLET.sub(" ", text)
    text = _CHAT_DROP.sub(" ", text)
    text = re.sub(r"&-(\S+)", r"\1", text)
    text = re.sub(r"@\S*", "", text)
    text = re.sub(r"[<>()^]", "", text)
    text = re.sub(r"(?<=\w):(?=\w|\s|$)", "", text)
    text = text.replace("_", " ")
    text = re.sub(r"\s+([.?!,])", r"\1", " ".join(text.split()))
    return text.strip()


def parse_chat(path: str | Path) -> list[Cue]:
    """Parse a CHAT transcript (TalkBank ``.cha``, e.g. ADReSS / Pitt).

    Each main tier ``*CODE:`` (with its tab-indented continuation lines) is one cue; its time
    comes from the bullet ``\\x15start_end\\x15`` (milliseconds) and its speaker is ``CODE``,
    with the role from the ``@Participants`` header (``PAR Participant, INV Investigator``).
    Dependent tiers (``%mor``, ``%gra``, ...) and headers are skipped. An utterance without a
    bullet cannot be placed in the recording: it is reported (with its line), as is a file
    with no utterance."""
    path = Path(path)
    raw = _read_text(path).split("\n")
    # join continuation lines (starting with a tab) to the tier they continue
    tiers: list[tuple[int, str]] = []
    for ln, line in enumerate(raw, 1):
        if line.startswith("\t") and tiers:
            tiers[-1] = (tiers[-1][0], tiers[-1][1] + " " + line.strip())
        elif line.strip():
            tiers.append((ln, line))
    roles: dict[str, str] = {}
    problems, cues = [], []
    for ln, line in tiers:
        if line.startswith("@Participants:"):
            for part in line.split(":", 1)[1].split(","):
                toks = part.split()
                if len(toks) >= 2:
                    roles[toks[0]] = toks[-1].replace("_", " ")
            continue
        if not line.startswith("*"):
            continue  # headers (@...) and dependent tiers (%mor, %gra, ...)
        head, _, body = line.partition(":")
        code = head[1:].strip()
        cue_no = len(cues) + 1
        times = _BULLET.findall(body)
        if not code or not _:
            problems.append(Problem("transcript_unparsable", f"main tier without 'CODE:' "
                                    f"({line[:40]!r})", file=str(path), cue=cue_no, line=ln))
            continue
        if not times:
            problems.append(Problem(
                "transcript_unparsable", f"utterance of {code} has no time bullet "
                "(\\x15start_end\\x15 in milliseconds), so it cannot be placed in the recording; "
                "add the bullet (CLAN's time alignment) or remove the utterance",
                file=str(path), cue=cue_no, line=ln))
            cues.append(Cue(cue_no, math.nan, math.nan, "", ln, speaker=code))
            continue
        start, end = int(times[0][0]) / 1000.0, int(times[-1][1]) / 1000.0
        text = clean_chat(body)
        cues.append(Cue(cue_no, start, end, text, ln, speaker=code, role=roles.get(code),
                        lines=(text,) if text else ()))
    return _finish(path, cues, problems, "no utterance tier (*CODE:)")


def parse_lines(path: str | Path) -> list[Cue]:
    """Parse a ``.txt`` clip transcript: one line per clip (no timestamps).

    Trailing blank lines are ignored; a blank line *between* lines is a clip with no text. A file
    whose every line is blank is empty.
    """
    path = Path(path)
    lines = _read_text(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise TranscriptError(path, [Problem("transcript_empty", "no lines", file=str(path))])
    return [Cue(k, None, None, " ".join(t.split()), k, lines=(" ".join(t.split()),))
            for k, t in enumerate(lines, 1)]


def parse_transcript(path: str | Path) -> list[Cue]:
    """Parse a transcript by its extension (``.vtt``, ``.srt``, ``.json``, ``.tsv``, ``.csv``,
    ``.cha``, ``.txt``)."""
    path = Path(path)
    ext = path.suffix.lower()
    if not path.is_file():
        raise TranscriptError(path, [Problem("transcript_missing", "transcript file not found",
                                             file=str(path))])
    if ext == ".vtt":
        return parse_vtt(path)
    if ext == ".srt":
        return parse_srt(path)
    if ext == ".json":
        return parse_json(path)
    if ext in (".tsv", ".csv"):
        return parse_table(path)
    if ext == ".cha":
        return parse_chat(path)
    if ext == ".txt":
        return parse_lines(path)
    raise TranscriptError(path, [Problem(
        "transcript_format", f"unknown transcript extension {ext!r} "
        f"(expected one of {', '.join(TRANSCRIPT_EXTENSIONS)})", file=str(path))])
