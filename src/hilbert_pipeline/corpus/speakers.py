"""Who speaks in each cue, which speakers make the document, and rolling-caption clean-up
(docs/corpus.md, "Speakers").

- :class:`SpeakerOptions` is the ``segmentation.speakers`` block: ``keep`` (``all`` or a list of
  speaker names or roles, matched case-insensitively), ``context`` (attach the other speakers'
  turn just before a kept cue) and ``clip_pattern`` (a regular expression with a ``speaker``
  group, read from each clip's file name).
- :func:`select_speakers` keeps the cues of the chosen speakers and says, per speaker, how many
  cues and seconds there were and whether they were kept.
- :func:`dedupe_rolling` removes the lines that rolling auto-captions repeat from one cue to the
  next, so a sentence is embedded once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hilbert_pipeline.corpus.transcripts import Cue
from hilbert_pipeline.errors import UserError

ROLLING_MODES = ("auto", True, False)
#: share of cues that must open with the previous cue's last line for ``auto`` to de-duplicate
ROLLING_MIN_SHARE = 0.3
#: a cue this short is a rolling caption's "hold" cue (YouTube's are 10 ms), not speech
HOLD_CUE_SECONDS = 0.05
NO_SPEAKER = "(none)"


class SpeakerOptionsError(UserError):
    """The ``segmentation.speakers`` block has a value that cannot be used."""


@dataclass(frozen=True)
class SpeakerOptions:
    """``keep``: None = every speaker, else the names/roles kept (lower-cased for matching).
    ``context``: prefix each kept cue's text with the other speakers' turn just before it.
    ``clip_pattern``: regex with a named group ``speaker`` searched in clip file names."""

    keep: tuple[str, ...] | None = None
    context: bool = False
    clip_pattern: str | None = None

    @classmethod
    def from_params(cls, params: dict | None) -> SpeakerOptions:
        params = dict(params or {})
        stray = sorted(set(params) - {"keep", "context", "clip_pattern"})
        if stray:
            raise SpeakerOptionsError(f"segmentation.speakers: unknown key(s) {stray}; "
                                      "expected keep, context, clip_pattern")
        keep = params.get("keep", "all")
        if keep is None or (isinstance(keep, str) and keep.strip().lower() == "all"):
            keep_t = None
        elif isinstance(keep, str):
            keep_t = (keep,)
        elif isinstance(keep, Sequence) and keep and all(isinstance(k, str | int) for k in keep):
            keep_t = tuple(str(k) for k in keep)
        else:
            raise SpeakerOptionsError(
                f"segmentation.speakers.keep must be 'all' or a list of speaker names or roles "
                f"(e.g. [Participant] or [PAR]), got {keep!r}")
        pattern = params.get("clip_pattern")
        if pattern is not None:
            try:
                rx = re.compile(str(pattern))
            except re.error as exc:
                raise SpeakerOptionsError(f"segmentation.speakers.clip_pattern {pattern!r} is not "
                                          f"a regular expression: {exc}") from exc
            if "speaker" not in rx.groupindex:
                raise SpeakerOptionsError(
                    f"segmentation.speakers.clip_pattern {pattern!r} needs a named group "
                    "(?P<speaker>...), e.g. '^(?P<speaker>[^_]+)_' for Name_Para_Sent.mp3")
        context = params.get("context", False)
        if not isinstance(context, bool):
            raise SpeakerOptionsError(f"segmentation.speakers.context must be true or false, got "
                                      f"{context!r}")
        return cls(keep_t, context, None if pattern is None else str(pattern))

    def keeps(self, cue: Cue) -> bool:
        if self.keep is None:
            return True
        wanted = {k.strip().lower() for k in self.keep}
        return any(v is not None and v.strip().lower() in wanted for v in (cue.speaker, cue.role))

    def as_dict(self) -> dict:
        return {"keep": "all" if self.keep is None else list(self.keep), "context": self.context,
                "clip_pattern": self.clip_pattern}


def clip_speakers(clips: Sequence[Path], pattern: str | None) -> list[str | None]:
    """The speaker of each clip from its file name (without extension), or None."""
    if pattern is None:
        return [None] * len(clips)
    rx = re.compile(pattern)
    out = []
    for c in clips:
        m = rx.search(Path(c).stem)
        name = m.group("speaker") if m else None
        out.append(name.strip() or None if name else None)
    return out


def with_speakers(cues: Sequence[Cue], speakers: Sequence[str | None]) -> list[Cue]:
    """``cues`` with their speaker set from ``speakers`` (same length; None keeps the cue's)."""
    return [dataclasses.replace(c, speaker=s) if s is not None else c
            for c, s in zip(cues, speakers, strict=True)]


def _seconds(c: Cue) -> float:
    return max(0.0, float(c.end) - float(c.start)) if c.start is not None else 0.0


def select_speakers(cues: Sequence[Cue], opts: SpeakerOptions
                    ) -> tuple[list[Cue], list[str], dict]:
    """Keep the cues of ``opts.keep``; return them, their contexts (the text of the other
    speakers' cues since the previous kept cue, when ``opts.context``; else "") and a summary:
    ``{"speakers": {name: {"cues", "seconds", "kept"}}, "kept_cues", "kept_seconds"}``.
    Clip cues (no times) count 0 seconds."""
    stats: dict[str, dict] = {}
    kept: list[Cue] = []
    contexts: list[str] = []
    pending: list[str] = []
    for c in cues:
        name = c.speaker if c.speaker is not None else NO_SPEAKER
        st = stats.setdefault(name, {"cues": 0, "seconds": 0.0, "kept": opts.keeps(c)})
        if c.role:
            st["role"] = c.role
        st["cues"] += 1
        st["seconds"] += _seconds(c)
        if opts.keeps(c):
            kept.append(c)
            contexts.append(" ".join(pending) if opts.context else "")
            pending = []
        elif c.text:
            pending.append(c.text)
    for st in stats.values():
        st["seconds"] = round(st["seconds"], 3)
    summary = {"speakers": stats, "kept_cues": len(kept),
               "kept_seconds": round(sum(_seconds(c) for c in kept), 3)}
    return kept, contexts, summary


def check_rolling_mode(mode: str | bool) -> str | bool:
    """``segmentation.rolling_captions`` itself: auto, true or false."""
    if mode not in ROLLING_MODES:
        raise SpeakerOptionsError(f"segmentation.rolling_captions must be auto, true or false, "
                                  f"got {mode!r}")
    return mode


def dedupe_rolling(cues: Sequence[Cue], mode: str | bool = "auto") -> tuple[list[Cue], dict]:
    """Remove the repeated lines of rolling captions.

    Rolling auto-captions (YouTube's, saved by yt-dlp) show each line twice: a cue's first line
    is the previous cue's last line, and short "hold" cues repeat a line alone. A cue's leading
    lines that equal the previous cue's trailing lines are dropped; a cue left without a line
    is dropped (its words are already in the cue before). ``mode``: ``True`` always, ``False``
    never, ``"auto"`` when at least ``ROLLING_MIN_SHARE`` of the cues (and at least 2) open with
    the previous cue's last line *as captions roll*: the cue goes on with a new line, or it is a
    hold cue (at most ``HOLD_CUE_SECONDS``). A sentence said again in its own cue of real length
    ("Yes." "Yes.", or a repeated prompt) is speech, not a rolling caption, and never counts.
    Returns the cues and ``{"detected", "applied", "cues_removed", "lines_removed"}``."""
    check_rolling_mode(mode)
    timed = [c for c in cues if c.lines]
    repeats = sum(1 for a, b in zip(timed[:-1], timed[1:], strict=True) if _rolls_on(a, b))
    detected = repeats >= 2 and repeats >= ROLLING_MIN_SHARE * max(1, len(timed) - 1)
    info = {"detected": bool(detected), "applied": False, "cues_removed": 0, "lines_removed": 0}
    if not (mode is True or (mode == "auto" and detected)):
        return list(cues), info
    info["applied"] = True
    out: list[Cue] = []
    prev_lines: tuple[str, ...] = ()
    for c in cues:
        lines = c.lines
        if not lines:
            out.append(c)
            continue
        k = _overlap(prev_lines, lines)
        prev_lines = lines
        if k == 0:
            out.append(c)
            continue
        info["lines_removed"] += k
        rest = lines[k:]
        if not rest:
            info["cues_removed"] += 1
            continue
        out.append(dataclasses.replace(c, text=" ".join(rest), lines=rest))
    return out, info


def _rolls_on(prev: Cue, cur: Cue) -> bool:
    """``cur`` opens with ``prev``'s last line the way a rolling caption does."""
    return cur.lines[0] == prev.lines[-1] and (
        len(cur.lines) >= 2 or cur.end - cur.start <= HOLD_CUE_SECONDS)


def _overlap(prev: tuple[str, ...], cur: tuple[str, ...]) -> int:
    """Largest k such that the first k lines of ``cur`` are the last k lines of ``prev``."""
    for k in range(min(len(prev), len(cur)), 0, -1):
        if prev[len(prev) - k:] == cur[:k]:
            return k
    return 0
