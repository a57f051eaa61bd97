"""Corpus validation (docs/corpus.md): one pass that reports *every* problem before any heavy work.

``validate_corpus`` reads the manifest, parses every transcript and reads every audio *header*
(never the samples), and returns the valid documents plus a JSON-able report. ``load_corpus``
wraps it: on any remaining problem it writes the report and raises ``CorpusValidationError``.

Problem kinds, and which a user may exclude (``exclude_invalid: true``) instead of failing:

=======================  =============================================================  ========
kind                     meaning                                                        scope
=======================  =============================================================  ========
corpus_missing           the corpus folder does not exist                               corpus
manifest_*               manifest.csv missing, unreadable, empty or lacking columns     corpus
doc_id_duplicate         the same doc_id on several rows                                corpus
label_too_few            a label has fewer documents than ``min_docs_per_label``        corpus*
label_single_class       only one label among the documents (``require_labels``)        corpus
label_case               labels that differ only in case (``Control``, ``control``)      corpus
corpus_empty             no valid document remains                                      corpus
split_partial            some rows have a split and others none                         corpus
doc_id_missing           empty doc_id                                                   document
audio_missing            audio path empty or not found                                  document
audio_unreadable         neither soundfile nor FFmpeg (PyAV) reads the header           document
audio_empty              zero-length recording or clip                                  document
transcript_*             transcript missing, unparsable, empty, or wrong type for audio  document
transcript_no_speech     the transcribe step heard no speech in the recording          document
cue_negative             a cue starts before 0                                          document
cue_end_before_start     end <= start                                                   document
cue_order                a cue starts before the previous cue                           document
cue_overlap              a cue starts before the previous one ends (beyond tolerance)   document
cue_beyond_audio         a cue ends after the audio (+ ``duration_tolerance``) or
                         starts at/after its end                                        document
clip_count_mismatch      number of clips != number of transcript lines                  document
clip_foreign_file        a non-audio entry inside a clip folder                         document
label_missing            empty label while ``require_labels`` is true                   document
split_invalid            split is not train/test                                        document
speaker_none_kept        no cue of the speakers ``segmentation.speakers.keep`` keeps     document
=======================  =============================================================  ========

(*) ``exclude_rare_labels: true`` excludes the documents of such labels instead of failing.

Tolerances: ``duration_tolerance`` (default 0.5 s) because subtitle tools round cue ends and
encoders pad the last frame, so a cue may end slightly after the decoded audio; segments are then
clamped to the audio. ``overlap_tolerance`` (default 0 s) lets cues overlap by a few ms (some ASR
exports do); larger overlaps mean duplicated speech and are errors. Cues of *different*
speakers may overlap (people talk over each other); only one speaker's own cues may not.

Speakers (docs/corpus.md, "Speakers"): every cue has the speaker its format gives (or the one a
clip's file name gives through ``speakers.clip_pattern``). ``speakers.keep`` keeps the cues of the
named speakers or roles only; the report lists, per document, each speaker's cues and seconds and
what was kept, and a document left without a cue is a ``speaker_none_kept`` problem, never a
silent drop. ``rolling_captions`` removes the repeated lines of rolling auto-captions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hilbert_pipeline.audio import AUDIO_EXTENSIONS, AudioError, audio_info
from hilbert_pipeline.corpus.manifest import (
    SPLIT_VALUES,
    ManifestError,
    generated_transcript,
    list_clips,
    read_manifest,
)
from hilbert_pipeline.corpus.speakers import (
    SpeakerOptions,
    check_rolling_mode,
    clip_speakers,
    dedupe_rolling,
    select_speakers,
    with_speakers,
)
from hilbert_pipeline.corpus.transcripts import (
    CLIP_EXTENSIONS,
    TIMED_EXTENSIONS,
    Cue,
    Problem,
    TranscriptError,
    parse_transcript,
)
from hilbert_pipeline.errors import UserError
from hilbert_pipeline.utils import write_json

logger = logging.getLogger(__name__)

_EPS = 1e-6
CORPUS_LEVEL = frozenset({
    "corpus_missing", "manifest_missing", "manifest_unreadable", "manifest_empty",
    "manifest_columns", "doc_id_duplicate", "label_too_few", "label_single_class", "label_case",
    "split_partial", "corpus_empty"})


#: what to do about each kind of problem: printed once per kind present, after the list
FIXES = {
    "corpus_missing": "check the path given as `corpus`",
    "manifest_missing": "write manifest.csv in the corpus folder (docs/corpus.md, \"Layout\")",
    "manifest_unreadable": "save manifest.csv as UTF-8 comma-separated text (e.g. `iconv -f "
                           "latin1 -t utf-8`), with quotes around cells that contain commas",
    "manifest_columns": "name the columns doc_id, label, audio, transcript (group and split "
                        "are optional)",
    "manifest_empty": "add one row per document",
    "doc_id_missing": "give every row a doc_id",
    "doc_id_duplicate": "make every doc_id unique (a row listed twice counts its document twice)",
    "audio_missing": "correct the audio path in manifest.csv (relative paths resolve against "
                     "the corpus folder)",
    "audio_unreadable": "convert the file to WAV or FLAC (e.g. `ffmpeg -i IN -ar 16000 "
                        "OUT.flac`), or replace a damaged or truncated copy",
    "audio_empty": "replace the empty recording, or remove its row",
    "transcript_missing": "correct the transcript path in manifest.csv, or leave the cell empty "
                          "to have Whisper transcribe the recording",
    "transcript_unreadable": "save the transcript as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > "
                             "OUT`)",
    "transcript_unparsable": "fix the line named (docs/corpus.md, \"Transcript formats\", says "
                             "what each format accepts)",
    "transcript_empty": "give the transcript at least one cue, or leave the cell empty to have "
                        "Whisper transcribe the recording",
    "label_case": "write each label the same way in manifest.csv, or merge the spellings with "
                  "classes.label_map (conf/base/parameters.yml)",
    "transcript_no_speech": "listen to the recording (silence, music or a damaged copy?); give "
                            "its transcript in manifest.csv, or replace the recording",
    "transcript_format": "pair a recording with a timed transcript (.vtt, .srt, .json, .tsv, "
                         ".csv, .cha) and a clip folder with a .txt of one line per clip",
    "cue_negative": "correct the cue's times (seconds from the start of the recording)",
    "cue_end_before_start": "correct the cue's times: each cue must end after it starts",
    "cue_order": "sort the cues by start time",
    "cue_overlap": "correct the overlapping times, or raise segmentation.overlap_tolerance if "
                   "your tool overlaps cues by a few milliseconds",
    "cue_beyond_audio": "check that the transcript belongs to this recording (a trimmed or "
                        "resampled copy shifts every time), or raise "
                        "segmentation.duration_tolerance for rounding at the end",
    "clip_count_mismatch": "give the .txt exactly one line per clip (a blank line for a clip "
                           "without words)",
    "clip_foreign_file": "move files that are not clips out of the clip folder",
    "speaker_none_kept": "check segmentation.speakers.keep against the speakers named",
    "label_missing": "fill in the label, or set segmentation.require_labels: false",
    "label_single_class": "add documents of at least one other label (or, to apply a trained "
                          "model to them, run the inference pipeline)",
    "split_invalid": "write train or test in the split column, or leave it empty on every row",
    "corpus_empty": "mend the problems listed above; every document had at least one",
}
_PER_DOCUMENT_ADVICE = ("or set segmentation.exclude_invalid=true to leave the documents with "
                        "problems out (each listed in the report)")


def _what_to_do(fatal: list[dict]) -> list[str]:
    """One line of advice per kind of problem present, in order of first appearance."""
    kinds = list(dict.fromkeys(p.get("kind") for p in fatal))
    lines = [f"  - {k}: {FIXES[k]}" for k in kinds if k in FIXES]
    if any(k not in CORPUS_LEVEL for k in kinds):
        lines.append(f"  ({_PER_DOCUMENT_ADVICE})")
    return ["What to do:", *lines] if lines else []


class CorpusValidationError(UserError):
    """The corpus has problems; the message lists every one, ``report`` holds them all, and a
    short "What to do" says, per kind of problem present, how to mend it."""

    def __init__(self, report: dict, report_path: str | Path | None = None):
        self.report = report
        probs = report.get("problems", [])
        fatal = [p for p in probs if p.get("fatal", True)]
        head = (f"corpus {report.get('corpus')!r} failed validation: {len(fatal)} problem(s)"
                + (f" (full report: {report_path})" if report_path else ""))
        lines = [f"  - {_fmt(p)}" for p in fatal]
        hint = report.get("hint")
        super().__init__("\n".join([head, *lines, *_what_to_do(fatal)]
                                   + ([hint] if hint else [])))


def _fmt(p: dict) -> str:
    return str(Problem(**{k: p.get(k) for k in
                          ("kind", "message", "file", "row", "cue", "line", "doc_id")}))


@dataclass
class Document:
    """A validated document: resolved paths, its cues and what the audio headers said."""

    doc_id: str
    row: int
    label: str | None
    group: str | None
    split: str | None
    audio: Path
    transcript: Path
    kind: str  # "recording" or "clips"
    duration: float
    cues: list[Cue]
    clips: list[tuple[Path, float]] = field(default_factory=list)
    #: per kept cue, the turn of other speakers just before it (``speakers.context``), else ""
    contexts: list[str] = field(default_factory=list)


@dataclass
class ValidationResult:
    documents: list[Document]
    report: dict

    @property
    def ok(self) -> bool:
        return bool(self.report["ok"])


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def check_cue_times(
    cues: list[Cue], duration: float, file: str, duration_tolerance: float,
    overlap_tolerance: float,
) -> list[Problem]:
    """Every timing problem of a recording's cues: order, overlap, end<=start, out of the audio."""
    probs: list[Problem] = []
    prev: Cue | None = None
    last_of: dict[str | None, Cue] = {}  # each speaker's previous cue: overlap is per speaker
    for c in cues:
        at = {"file": file, "cue": c.index, "line": c.line}
        same = last_of.get(c.speaker)
        if c.start < 0:
            probs.append(Problem("cue_negative", f"starts at {c.start:.3f} s (< 0)", **at))
        if c.end <= c.start + _EPS:
            probs.append(Problem("cue_end_before_start",
                                 f"end {c.end:.3f} s is not after start {c.start:.3f} s", **at))
        if prev is not None and c.start < prev.start - _EPS:
            probs.append(Problem("cue_order", f"starts at {c.start:.3f} s, before the previous "
                                 f"cue ({prev.index}) starting at {prev.start:.3f} s", **at))
        elif same is not None and c.start < same.end - overlap_tolerance - _EPS:
            who = f" of the same speaker {c.speaker!r}" if c.speaker else ""
            probs.append(Problem("cue_overlap", f"starts at {c.start:.3f} s, before the "
                                 f"previous cue{who} ({same.index}) ends at {same.end:.3f} s "
                                 f"(overlap_tolerance={overlap_tolerance} s)", **at))
        if c.start >= duration - _EPS and c.start >= 0:
            probs.append(Problem("cue_beyond_audio", f"starts at {c.start:.3f} s, at or after the "
                                 f"end of the audio ({duration:.3f} s)", **at))
        elif c.end > duration + duration_tolerance + _EPS:
            probs.append(Problem("cue_beyond_audio", f"ends at {c.end:.3f} s, after the end of the "
                                 f"audio ({duration:.3f} s; tolerance {duration_tolerance} s)",
                                 **at))
        prev = c
        last_of[c.speaker] = c
    return probs


def _check_document(row, corpus_dir: Path, opts: dict, speaker_report: dict
                    ) -> tuple[Document | None, list[Problem]]:
    """Validate one manifest row; return the document (None if unusable) and its problems.
    The document's speaker summary goes to ``speaker_report[doc_id]``. A row without a
    transcript uses the one the ``transcribe`` step wrote (``generated_transcripts``)."""
    at = {"row": row.row, "doc_id": row.doc_id or None}
    generated = opts.get("generated_transcripts")
    transcribed = False
    if not row.transcript and row.doc_id and generated:
        found = generated_transcript(generated, row.doc_id)
        if found is not None:
            row, transcribed = dataclasses.replace(row, transcript=str(found)), True
    probs = _row_problems(row, opts, at)
    if not row.audio or not row.transcript:
        return None, probs
    audio, transcript = _resolve(corpus_dir, row.audio), _resolve(corpus_dir, row.transcript)
    cues = _parse_cues(audio, transcript, probs, at)
    if transcribed:  # Whisper's own transcript without cues: the recording had no speech
        probs = [dataclasses.replace(p, kind="transcript_no_speech", message=(
            f"the transcribe step heard no speech in {audio.name} (its transcript has no cues)"))
            if p.kind == "transcript_empty" else p for p in probs]
    if not audio.exists():
        return None, probs
    rolling = None
    if audio.is_dir():
        doc, probs = _check_clips(row, audio, transcript, cues, probs, at)
    else:
        cues, rolling = dedupe_rolling(cues, opts["rolling_captions"])
        doc, probs = _check_recording(row, audio, transcript, cues, probs, opts, at)
    if doc is not None:
        doc, more, summary = _apply_speakers(doc, opts["speakers"], at)
        if rolling and rolling["detected"]:
            summary["rolling_captions"] = rolling
        speaker_report[row.doc_id] = summary
        probs.extend(more)
    return doc, probs


def _apply_speakers(doc: Document, sp: SpeakerOptions, at: dict
                    ) -> tuple[Document | None, list[Problem], dict]:
    """Speakers of clip names, the ``keep`` filter and the contexts; returns the document
    (None when no cue is kept), the problems and the document's speaker summary."""
    cues = doc.cues
    if doc.kind == "clips" and sp.clip_pattern is not None:
        cues = with_speakers(cues, clip_speakers([p for p, _ in doc.clips], sp.clip_pattern))
    kept, contexts, summary = select_speakers(cues, sp)
    if not kept:
        found = ", ".join(f"{k} ({v['cues']} cues)" for k, v in summary["speakers"].items())
        return None, [Problem(
            "speaker_none_kept", f"no cue of the kept speakers {list(sp.keep or ())} (this "
            f"transcript has: {found}); check segmentation.speakers.keep (names or roles), or "
            "set exclude_invalid: true to leave this document out (it is then listed)",
            file=str(doc.transcript), **at)], summary
    if doc.kind == "clips":
        keep_idx = [k for k, c in enumerate(cues) if sp.keeps(c)]
        doc.clips = [doc.clips[k] for k in keep_idx]
        doc.duration = float(sum(d for _, d in doc.clips))
    doc.cues, doc.contexts = kept, contexts
    return doc, [], summary


def _row_problems(row, opts: dict, at: dict) -> list[Problem]:
    """What the manifest row itself gets wrong: id, label, split, empty paths."""
    probs: list[Problem] = []
    if not row.doc_id:
        probs.append(Problem("doc_id_missing", "empty doc_id", file="manifest.csv", **at))
    if opts["require_labels"] and not row.label:
        probs.append(Problem("label_missing", "empty label (labels are required for training; "
                             "set segmentation.require_labels: false for unlabelled corpora)",
                             file="manifest.csv", **at))
    if row.split is not None and row.split.lower() not in SPLIT_VALUES:
        probs.append(Problem("split_invalid", f"split {row.split!r} is not one of "
                             f"{', '.join(SPLIT_VALUES)}", file="manifest.csv", **at))
    if not row.audio:
        probs.append(Problem("audio_missing", "empty audio path", file="manifest.csv", **at))
    if not row.transcript:
        hint = ("; the transcribe step wrote none for it (see data/08_reporting/"
                "transcription.json: was its recording unreadable?)"
                if opts.get("generated_transcripts") else
                "; give one, or let Whisper transcribe the recording (transcribe.enabled: true)")
        probs.append(Problem("transcript_missing", f"empty transcript path{hint}",
                             file="manifest.csv", **at))
    return probs


def _parse_cues(audio: Path, transcript: Path, probs: list[Problem], at: dict) -> list[Cue]:
    """The transcript's cues (none when unparsable, or of the wrong kind for the audio: a clip
    folder needs a .txt, one recording a timed format); problems go to ``probs``."""
    t_file, ext = str(transcript), transcript.suffix.lower()
    if not audio.exists():
        probs.append(Problem("audio_missing", "audio file or clip folder not found",
                             file=str(audio), **at))
    try:
        cues = parse_transcript(transcript)
    except TranscriptError as exc:
        probs.extend(Problem(p.kind, p.message, file=p.file or t_file, cue=p.cue, line=p.line, **at)
                     for p in exc.problems)
        cues = []
    if audio.exists() and audio.is_dir() and ext not in CLIP_EXTENSIONS:
        probs.append(Problem("transcript_format", f"audio is a clip folder, so the transcript must "
                             f"be a .txt with one line per clip (got {ext or 'no extension'})",
                             file=t_file, **at))
        cues = []
    if audio.exists() and not audio.is_dir() and ext in CLIP_EXTENSIONS:
        probs.append(Problem("transcript_format", "a .txt transcript has no timestamps, so the "
                             "audio must be a folder of clips (one per line); for one recording "
                             f"use {', '.join(TIMED_EXTENSIONS)}", file=t_file, **at))
        cues = []
    return cues


def _check_clips(row, audio: Path, transcript: Path, cues: list[Cue], probs: list[Problem],
                 at: dict) -> tuple[Document | None, list[Problem]]:
    """A clip folder: every clip readable and non-empty, one transcript line per clip."""
    a_file = str(audio)
    clip_paths, foreign = list_clips(audio)
    if foreign:
        probs.append(Problem("clip_foreign_file", "entries that are not audio clips "
                             f"({', '.join(AUDIO_EXTENSIONS)}): "
                             f"{', '.join(foreign[:10])}"
                             + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""),
                             file=a_file, **at))
    clips: list[tuple[Path, float]] = []
    for cp in clip_paths:
        try:
            dur, _, _ = audio_info(cp)
        except AudioError as exc:
            probs.append(Problem("audio_unreadable", str(exc).split(": ", 1)[-1],
                                 file=str(cp), **at))
            continue
        if dur <= 0:
            probs.append(Problem("audio_empty", "clip has no samples", file=str(cp), **at))
        clips.append((cp, dur))
    if not clip_paths:
        probs.append(Problem("audio_empty", "clip folder holds no audio clips", file=a_file,
                             **at))
    if cues and clip_paths and len(clip_paths) != len(cues):
        probs.append(Problem("clip_count_mismatch", f"{len(clip_paths)} clips in {a_file} but "
                             f"{len(cues)} lines in the transcript (one line per clip, "
                             "matched in natural order of the clip names)", file=str(transcript),
                             **at))
    if probs:
        return None, probs
    return Document(row.doc_id, row.row, row.label, row.group,
                    row.split.lower() if row.split else None, audio, transcript, "clips",
                    float(sum(d for _, d in clips)), cues, clips), probs


def _check_recording(row, audio: Path, transcript: Path, cues: list[Cue], probs: list[Problem],
                     opts: dict, at: dict) -> tuple[Document | None, list[Problem]]:
    """One recording: readable, non-empty, and every cue inside it, in order, not overlapping."""
    a_file, t_file = str(audio), str(transcript)
    try:
        duration, _, _ = audio_info(audio)
    except AudioError as exc:
        probs.append(Problem("audio_unreadable", str(exc).split(": ", 1)[-1], file=a_file, **at))
        # the transcript's own timing faults (order, overlap, end <= start) are reported too, so
        # one pass lists everything; only the checks against the audio's duration need the audio
        probs.extend(Problem(p.kind, p.message, file=p.file, cue=p.cue, line=p.line, **at)
                     for p in check_cue_times(cues, float("inf"), t_file,
                                              opts["duration_tolerance"],
                                              opts["overlap_tolerance"]))
        return None, probs
    if duration <= 0:
        probs.append(Problem("audio_empty", "recording has no samples", file=a_file, **at))
    elif cues:
        probs.extend(Problem(p.kind, p.message, file=p.file, cue=p.cue, line=p.line, **at)
                     for p in check_cue_times(cues, duration, t_file, opts["duration_tolerance"],
                                              opts["overlap_tolerance"]))
    if probs:
        return None, probs
    return Document(row.doc_id, row.row, row.label, row.group,
                    row.split.lower() if row.split else None, audio, transcript, "recording",
                    float(duration), cues), probs


def validate_corpus(
    corpus: str | Path,
    *,
    require_labels: bool = True,
    min_docs_per_label: int = 2,
    exclude_invalid: bool = False,
    exclude_rare_labels: bool = False,
    duration_tolerance: float = 0.5,
    overlap_tolerance: float = 0.0,
    progress: bool = False,
    default_corpus_hint: str | None = None,
    speakers: dict | SpeakerOptions | None = None,
    rolling_captions: str | bool = "auto",
    generated_transcripts: str | Path | None = None,
    label_map: dict | None = None,
) -> ValidationResult:
    """Check a corpus folder and return its valid documents and a report of every problem.

    ``speakers``: the ``segmentation.speakers`` block (or :class:`SpeakerOptions`): which
    speakers' cues make the documents. ``rolling_captions``: ``auto``/``true``/``false``,
    de-duplication of rolling auto-captions (``corpus.speakers.dedupe_rolling``).
    ``generated_transcripts``: the folder where the ``transcribe`` step wrote transcripts for
    the rows that have none (``<doc_id>.vtt`` / ``.txt``); None: such rows are problems.
    ``label_map``: the shared ``classes.label_map`` (labels renamed or merged into classes):
    the label counts (``min_docs_per_label``, one class alone) are those of the classes it
    makes, so two rare labels merged into one class are not refused.

    Nothing is raised for problems in the data (see ``load_corpus``); the report says ``ok``.
    ``default_corpus_hint`` is appended to the report when the folder does not exist (e.g. how to
    build the demo corpus).
    """
    from tqdm.auto import tqdm

    corpus_dir = Path(corpus).expanduser().resolve()
    opts = {"require_labels": bool(require_labels), "min_docs_per_label": int(min_docs_per_label),
            "exclude_invalid": bool(exclude_invalid),
            "exclude_rare_labels": bool(exclude_rare_labels),
            "duration_tolerance": float(duration_tolerance),
            "overlap_tolerance": float(overlap_tolerance),
            "rolling_captions": rolling_captions,
            "generated_transcripts": None if generated_transcripts is None
            else str(generated_transcripts),
            "label_map": {str(k): str(v) for k, v in dict(label_map or {}).items()}}
    sp = speakers if isinstance(speakers, SpeakerOptions) else SpeakerOptions.from_params(speakers)
    check_rolling_mode(rolling_captions)  # an invalid mode fails here, before any work
    if opts["duration_tolerance"] < 0 or opts["overlap_tolerance"] < 0:
        raise ValueError("segmentation.duration_tolerance and overlap_tolerance must be >= 0")
    report: dict = {"corpus": str(corpus_dir), "ok": False,
                    "options": {**opts, "speakers": sp.as_dict()}, "n_rows": 0,
                    "n_documents": 0, "n_problems": 0, "problems": [], "excluded": [],
                    "labels": {}, "speakers": {}}
    opts["speakers"] = sp

    def finish(problems: list[Problem], docs: list[Document]) -> ValidationResult:
        out = []
        for p in problems:
            d = p.as_dict()
            # a document-level problem is not fatal only when the user chose to exclude
            d["fatal"] = p.kind in CORPUS_LEVEL or not opts["exclude_invalid"]
            out.append(d)
        report["problems"] = out
        report["n_problems"] = len(out)
        report["ok"] = not any(d["fatal"] for d in out)
        report["n_documents"] = len(docs)
        report["labels"] = dict(Counter(d.label for d in docs if d.label).most_common())
        return ValidationResult(docs, report)

    if not corpus_dir.is_dir():
        msg = ("corpus folder not found" if not corpus_dir.exists() else "is not a folder")
        if default_corpus_hint:
            report["hint"] = default_corpus_hint
        return finish([Problem("corpus_missing", msg, file=str(corpus_dir))], [])
    try:
        rows, _ = read_manifest(corpus_dir / "manifest.csv",
                                label_column=opts["require_labels"])
    except ManifestError as exc:
        return finish([Problem(exc.kind, exc.message, file=exc.file)], [])
    report["n_rows"] = len(rows)
    problems = _manifest_problems(rows, corpus_dir)
    docs: list[Document] = []
    bad_rows: dict[int, list[str]] = {}
    for r in tqdm(rows, desc="validating corpus", unit="doc", disable=not progress):
        doc, probs = _check_document(r, corpus_dir, opts, report["speakers"])
        problems.extend(probs)
        if probs:
            bad_rows.setdefault(r.row, []).extend(str(p) for p in probs)
        elif doc is not None:
            docs.append(doc)
    _note_wordless(docs, report)
    if opts["exclude_invalid"]:
        _list_excluded_rows(rows, bad_rows, report)
    kept, label_problems = _check_labels(docs, opts, report)
    problems.extend(label_problems)
    already_fatal = any(p.kind in CORPUS_LEVEL or not opts["exclude_invalid"] for p in problems)
    if not kept and rows and not already_fatal:
        problems.append(Problem("corpus_empty", "no valid document remains", file="manifest.csv"))
    problems.sort(key=lambda p: (p.row is None, p.row or 0))
    return finish(problems, kept)


def _manifest_problems(rows: list, corpus_dir: Path) -> list[Problem]:
    """Corpus-wide problems of the manifest rows: none at all, duplicate ids, partial split."""
    problems: list[Problem] = []
    if not rows:
        problems.append(Problem("manifest_empty", "no documents (only a header)",
                                file=str(corpus_dir / "manifest.csv")))
    ids = Counter(r.doc_id for r in rows if r.doc_id)
    for doc_id, n in ids.items():
        if n > 1:
            where = [r.row for r in rows if r.doc_id == doc_id]
            problems.append(Problem("doc_id_duplicate", f"doc_id appears on {n} rows "
                                    f"({', '.join(map(str, where))})", file="manifest.csv",
                                    row=where[1], doc_id=doc_id))
    with_split = [r for r in rows if r.split is not None]
    if with_split and len(with_split) != len(rows):
        empty = [r.row for r in rows if r.split is None]
        problems.append(Problem("split_partial", f"{len(with_split)} rows set a split but "
                                f"{len(empty)} leave it empty (rows {', '.join(map(str, empty[:10]))}"
                                f"{' ...' if len(empty) > 10 else ''}); set it on every row or "
                                "on none", file="manifest.csv"))
    return problems


def _note_wordless(docs: list[Document], report: dict) -> None:
    """Documents whose cues have no text at all: kept as documents without transcript, listed
    in the report and logged (never silently)."""
    wordless = [d for d in docs if not any(c.text.strip() for c in d.cues)]
    report["documents_without_words"] = [d.doc_id for d in wordless]
    for d in wordless:
        logger.warning("document %r (manifest row %d): no cue of %s has any text; it is used as a "
                       "document without transcript (audio only)", d.doc_id, d.row,
                       d.transcript.name)


def _list_excluded_rows(rows: list, bad_rows: dict[int, list[str]], report: dict) -> None:
    for r in rows:
        if r.row in bad_rows:
            report["excluded"].append({"row": r.row, "doc_id": r.doc_id or None,
                                       "reasons": bad_rows[r.row]})
            logger.warning("excluding document %r (manifest row %d): %s", r.doc_id, r.row,
                           "; ".join(bad_rows[r.row]))


def _check_labels(docs: list[Document], opts: dict, report: dict
                  ) -> tuple[list[Document], list[Problem]]:
    """Class counts among the documents that remain (unlabelled ones do not count; a label's
    class is its ``label_map`` entry, else the label): rare classes fail (named with their
    documents) or are excluded; one class alone fails when labels are required; labels that
    differ only in case fail. Returns the documents kept and the problems."""
    problems: list[Problem] = []
    kept = docs
    need = opts["min_docs_per_label"]
    lmap = opts.get("label_map") or {}

    def cls(label: str) -> str:
        return lmap.get(label, label)

    def named(c: str) -> str:
        merged = sorted({d.label for d in kept if d.label and cls(d.label) == c} - {c})
        via = ", ".join(repr(m) for m in merged)
        return f"label {c!r}" + (f" (from {via} through classes.label_map)" if merged else "")

    by_case: dict[str, set[str]] = {}
    for d in kept:
        if d.label:
            by_case.setdefault(d.label.casefold(), set()).add(d.label)
    for spellings in by_case.values():
        if len({cls(lab) for lab in spellings}) > 1:
            problems.append(Problem("label_case", "labels " + ", ".join(
                repr(lab) for lab in sorted(spellings)) + " differ only in case, so they are "
                f"{len(spellings)} classes; is that meant?", file="manifest.csv"))
    counts = Counter(cls(d.label) for d in kept if d.label)
    if lmap:
        report["classes"] = dict(counts.most_common())
    rare = {c: n for c, n in counts.items() if n < need}
    if rare and opts["exclude_rare_labels"]:
        for d in kept:
            if d.label and cls(d.label) in rare:
                reason = (f"{named(cls(d.label))} has {rare[cls(d.label)]} document(s), fewer "
                          f"than min_docs_per_label={need}")
                report["excluded"].append({"row": d.row, "doc_id": d.doc_id, "reasons": [reason]})
                logger.warning("excluding document %r: %s", d.doc_id, reason)
        kept = [d for d in kept if not (d.label and cls(d.label) in rare)]
        rare = {}
    for c, n in sorted(rare.items()):
        members = [d.doc_id for d in kept if d.label and cls(d.label) == c]
        listed = ", ".join(members[:10]) + (" ..." if len(members) > 10 else "")
        problems.append(Problem("label_too_few", f"{named(c)} has {n} document(s) "
                                f"({listed}); the folds "
                                f"need at least min_docs_per_label={need} (add documents, lower "
                                "min_docs_per_label, merge labels with classes.label_map, or set "
                                "exclude_rare_labels: true)",
                                file="manifest.csv"))
    classes = {cls(d.label) for d in kept if d.label}
    if opts["require_labels"] and kept and len(classes) == 1:
        problems.append(Problem("label_single_class", "every document has the same label "
                                f"{next(iter(classes))!r}; classification needs at least 2 "
                                "labels", file="manifest.csv"))
    return kept, problems


def load_corpus(
    corpus: str | Path,
    report_path: str | Path | None = None,
    **options,
) -> ValidationResult:
    """``validate_corpus`` that fails loudly: on any problem the report is written to
    ``report_path`` (when given) and ``CorpusValidationError`` is raised listing every problem."""
    result = validate_corpus(corpus, **options)
    if not result.ok:
        if report_path is not None:
            write_json(report_path, result.report)
        raise CorpusValidationError(result.report, report_path)
    return result
