"""Transcript parsers (docs/corpus.md): WebVTT, SubRip, Whisper-style JSON, TSV and one-line-per-clip TXT.

Each parser reads the whole file, collects *every* problem it finds (with the cue number and line)
instead of stopping at the first, and raises one ``TranscriptError`` listing them. Timing checks
that need the audio (order, overlap, duration) live in ``validation``; the parsers only check that
each cue is well-formed.

Tolerated on input (real subtitle files do all of these): a UTF-8 byte-order mark, CRLF or CR line
ends, cue identifiers, ``hh:`` omitted (``mm:ss.mmm``), ``,`` or ``.`` before the milliseconds,
cue settings after the end time, multi-line cue text (joined with a space), markup tags such as
``<v Speaker>``, ``<i>``, ``<c.red>`` or inline ``<00:00:01.000>`` timestamps (removed), SRT
``{\\an8}`` position codes (removed), HTML entities (decoded), and WebVTT ``NOTE``/``STYLE``/
``REGION`` blocks (skipped).
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from hilbert_pipeline.errors import UserError

TIMED_EXTENSIONS = (".vtt", ".srt", ".json", ".tsv")
CLIP_EXTENSIONS = (".txt",)
TRANSCRIPT_EXTENSIONS = TIMED_EXTENSIONS + CLIP_EXTENSIONS


@dataclass(frozen=True)
class Cue:
    """One transcript unit: ``start``/``end`` in seconds (None for clip lines), its text.

    ``index`` is the 1-based cue (or clip line) number, ``line`` the 1-based line in the file.
    """

    index: int
    start: float | None
    end: float | None
    text: str
    line: int | None = None


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


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
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


def parse_subtitles(path: str | Path) -> list[Cue]:
    """Parse a WebVTT (``.vtt``) or SubRip (``.srt``) file into cues."""
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
        cues.append(Cue(cue_no, start, end, clean_cue_text(block[timing_at + 1:]), t_line))
    if not cues and not problems:
        problems.append(Problem("transcript_empty", "no cues found", file=str(path)))
    if problems:
        raise TranscriptError(path, problems)
    return cues


def parse_json(path: str | Path) -> list[Cue]:
    """Parse a Whisper-style ``{"segments": [{"start", "end", "text"}, ...]}`` file."""
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
        if bad:
            problems.append(Problem("transcript_unparsable", "; ".join(bad), file=str(path), cue=k))
            continue
        cues.append(Cue(k, vals["start"], vals["end"], " ".join(txt.split())))
    if not data["segments"]:
        problems.append(Problem("transcript_empty", '"segments" is empty', file=str(path)))
    if problems:
        raise TranscriptError(path, problems)
    return cues


_HEADER_START = {"start", "begin", "start_time", "starttime", "start_s", "onset", "from", "t0"}
_HEADER_END = {"end", "stop", "end_time", "endtime", "end_s", "offset", "to", "t1"}


def parse_tsv(path: str | Path) -> list[Cue]:
    """Parse ``start<TAB>end<TAB>text`` lines (seconds).

    A first line is skipped as a header only when it is clearly one: its first two fields are
    column names such as ``start``/``end`` (also begin/stop, onset/offset, start_time/end_time).
    Any other non-numeric line is an error. Blank lines are ignored; text may be empty.
    """
    path = Path(path)
    lines = _read_text(path).split("\n")
    problems, cues = [], []
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        if (not cues and not problems and len(fields) >= 2
                and fields[0].strip().lower() in _HEADER_START
                and fields[1].strip().lower() in _HEADER_END):
            continue
        cue_no = len(cues) + 1
        if len(fields) < 2:
            problems.append(Problem("transcript_unparsable",
                                    f"expected start<TAB>end<TAB>text, got {line[:60]!r}",
                                    file=str(path), cue=cue_no, line=ln))
            cues.append(Cue(cue_no, math.nan, math.nan, "", ln))
            continue
        try:
            start, end = float(fields[0]), float(fields[1])
            if not (math.isfinite(start) and math.isfinite(end)):
                raise ValueError
        except ValueError:
            problems.append(Problem("transcript_unparsable",
                                    f"start/end must be numbers of seconds, got "
                                    f"{fields[0][:20]!r} and {fields[1][:20]!r}",
                                    file=str(path), cue=cue_no, line=ln))
            cues.append(Cue(cue_no, math.nan, math.nan, "", ln))
            continue
        text = fields[2] if len(fields) > 2 else ""
        cues.append(Cue(cue_no, start, end, " ".join(text.split()), ln))
    if not cues and not problems:
        problems.append(Problem("transcript_empty", "no lines", file=str(path)))
    if problems:
        raise TranscriptError(path, problems)
    return cues


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
    return [Cue(k, None, None, " ".join(t.split()), k) for k, t in enumerate(lines, 1)]


def parse_transcript(path: str | Path) -> list[Cue]:
    """Parse a transcript by its extension (``.vtt``, ``.srt``, ``.json``, ``.tsv``, ``.txt``)."""
    path = Path(path)
    ext = path.suffix.lower()
    if not path.is_file():
        raise TranscriptError(path, [Problem("transcript_missing", "transcript file not found",
                                             file=str(path))])
    if ext in (".vtt", ".srt"):
        return parse_subtitles(path)
    if ext == ".json":
        return parse_json(path)
    if ext == ".tsv":
        return parse_tsv(path)
    if ext == ".txt":
        return parse_lines(path)
    raise TranscriptError(path, [Problem(
        "transcript_format", f"unknown transcript extension {ext!r} "
        f"(expected one of {', '.join(TRANSCRIPT_EXTENSIONS)})", file=str(path))])
