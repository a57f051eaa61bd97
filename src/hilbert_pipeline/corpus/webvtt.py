"""A WebVTT file parser that follows the W3C WebVTT parsing rules (docs/corpus.md).

The rules are those of the "WebVTT parser algorithm" of https://www.w3.org/TR/webvtt1/ (file
parsing only): the signature, blocks, cue identifiers, cue timings, newlines and NULL characters
are handled exactly as a browser does, so a caption file means here what it means in a video
player. Cue settings, regions and style sheets are recognised and skipped (never read as text).
The consequences that matter for a corpus:

- a line containing ``-->`` starts a new cue, even without a blank line before it (YouTube
  auto-captions saved by yt-dlp do this), so a timing line is never read as words;
- a timestamp is ``[hh:]mm:ss.ttt`` with exactly two digits for minutes and seconds and three
  after the ``.``; a cue whose timing line does not follow that form is discarded by the rules.
  Such blocks are returned in :attr:`WebVTTFile.discarded` so the caller can report them
  (hilbert_pipeline never drops a cue's text silently);
- CR and CRLF line ends become LF, U+0000 becomes U+FFFD, a UTF-8 byte-order mark is ignored.

No third-party parser is used: webvtt-py 0.6.0, the common Python package, reads the YouTube
case right but fails 4 of the 37 rule cases of ``tests/corpus/test_webvtt_rules.py`` (it
accepts a glued signature ``WEBVTTX``, timestamps the rules reject such as ``0000:00.000`` and
``00:00:0.000``, a vertical tab as whitespace, and keeps NULL characters), and it drops a cue
with a bad timing line without saying so, where this project must report it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ARROW = "-->"
_WS = " \t\n\f\r"  # ASCII whitespace of the WHATWG infra standard


@dataclass(frozen=True)
class WebVTTCue:
    """One cue as the rules define it: ``id``, ``start``/``end`` in seconds, ``text`` (the raw
    cue payload: lines joined with LF, markup kept), ``settings`` (the rest of the timing line)
    and ``line`` (1-based line number of the timing line in the file)."""

    id: str
    start: float
    end: float
    text: str
    settings: str = ""
    line: int = 0


@dataclass(frozen=True)
class Discarded:
    """A block the rules throw away because its ``-->`` line is not a valid timing line.
    ``text`` is what followed that line in the block (the cue text a player drops; empty when
    the line was an identifier that contains an arrow, or a timing line without text)."""

    line: int
    timing: str
    text: str


@dataclass
class WebVTTFile:
    """The parse of one file. ``valid_signature`` is False when the file does not start with
    ``WEBVTT`` (the rules then stop: no cue)."""

    valid_signature: bool
    cues: list[WebVTTCue] = field(default_factory=list)
    discarded: list[Discarded] = field(default_factory=list)


def preprocess(text: str) -> str:
    """Line ends to LF, NULL to U+FFFD, a leading byte-order mark removed."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\x00", "\ufffd").replace("\r\n", "\n").replace("\r", "\n")


def parse_timestamp(s: str, pos: int) -> tuple[float, int] | None:
    """Collect a WebVTT timestamp at ``pos``; return (seconds, new position) or None."""
    n = len(s)

    def digits(p: int) -> tuple[str, int]:
        q = p
        while q < n and "0" <= s[q] <= "9":
            q += 1
        return s[p:q], q

    def field(p: int, sep: str, width: int) -> tuple[int | None, int]:
        """``sep`` then exactly ``width`` digits at ``p``: (value or None, new position)."""
        if p >= n or s[p] != sep:
            return None, p
        d, q = digits(p + 1)
        return (int(d) if len(d) == width else None), q

    if pos >= n or not ("0" <= s[pos] <= "9"):
        return None
    d1, pos = digits(pos)
    v1 = int(d1)
    hours = len(d1) != 2 or v1 > 59
    v2, pos = field(pos, ":", 2)
    if v2 is None:
        return None
    if hours or (pos < n and s[pos] == ":"):
        v3, pos = field(pos, ":", 2)
        if v3 is None:
            return None
    else:
        v1, v2, v3 = 0, v1, v2
    millis, pos = field(pos, ".", 3)
    if millis is None or v2 > 59 or v3 > 59:
        return None
    return v1 * 3600 + v2 * 60 + v3 + millis / 1000.0, pos


def format_timestamp(t: float, millis_sep: str = ".") -> str:
    """Seconds as ``hh:mm:ss.ttt`` (``millis_sep=","`` gives SubRip's form)."""
    ms = int(round(t * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    sec, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{sec:02d}{millis_sep}{ms:03d}"


def parse_timing_line(line: str) -> tuple[float, float, str] | None:
    """Cue timings and settings: (start, end, settings) or None when the line is not valid."""
    pos, n = 0, len(line)

    def skip_ws(p: int) -> int:
        while p < n and line[p] in _WS:
            p += 1
        return p

    pos = skip_ws(pos)
    got = parse_timestamp(line, pos)
    if got is None:
        return None
    start, pos = got
    pos = skip_ws(pos)
    if line[pos:pos + 3] != ARROW:
        return None
    pos = skip_ws(pos + 3)
    got = parse_timestamp(line, pos)
    if got is None:
        return None
    end, pos = got
    return start, end, line[pos:].strip(_WS)


def parse_webvtt(text: str) -> WebVTTFile:
    """Parse the text of a WebVTT file by the rules (see the module docstring)."""
    s = preprocess(text)
    if len(s) < 6 or not s.startswith("WEBVTT") or (len(s) > 6 and s[6] not in " \t\n"):
        return WebVTTFile(valid_signature=False)
    out = WebVTTFile(valid_signature=True)
    lines = s.split("\n")
    # lines[i] is line i+1 of the file; the file's final LF gives a trailing "" that is no line
    ends_with_lf = s.endswith("\n")
    n = len(lines) - (1 if ends_with_lf else 0)
    i = 1  # the signature line (with anything after "WEBVTT") is skipped
    if i < n and lines[i] != "":
        i = _block(lines, i, n, out, in_header=True)
    while i < n:
        while i < n and lines[i] == "":
            i += 1
        if i >= n:
            break
        i = _block(lines, i, n, out, in_header=False)
    return out


def _block(lines: list[str], i: int, n: int, out: WebVTTFile, in_header: bool) -> int:
    """Collect one WebVTT block starting at line index ``i``; append its cue (if any) to
    ``out``. Returns the index of the first line after the block."""
    line_count = 0
    buffer: list[str] = []
    seen_arrow = False
    cue: dict | None = None
    failed: tuple[int, str, int] | None = None  # a timing line that failed: (line, text, ids)
    prev_i = i
    while i < n:
        line = lines[i]
        line_count += 1
        i += 1
        if ARROW in line:
            if not in_header and (line_count == 1 or (line_count == 2 and not seen_arrow)):
                seen_arrow = True
                prev_i = i
                timing = parse_timing_line(line)
                ident = "\n".join(buffer)
                if timing is None:  # the rules keep the buffer: the block yields no cue
                    cue, failed = None, (i, line, len(buffer))
                else:
                    cue = {"id": ident, "start": timing[0], "end": timing[1],
                           "settings": timing[2], "line": i}
                    failed = None
                    buffer = []
            else:
                i = prev_i
                break
        elif line == "":
            break
        else:  # text, an identifier, or a STYLE/REGION block's body (no cue: ignored)
            buffer.append(line)
            prev_i = i
    if cue is not None:
        out.cues.append(WebVTTCue(cue["id"], cue["start"], cue["end"], "\n".join(buffer),
                                  cue["settings"], cue["line"]))
    elif failed is not None:
        out.discarded.append(Discarded(failed[0], failed[1], "\n".join(buffer[failed[2]:])))
    return i
