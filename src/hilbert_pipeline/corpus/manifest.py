"""Reading ``manifest.csv`` and listing clip folders (docs/corpus.md).

The manifest is read with the ``csv`` module, every value as a string (pandas would turn ids such
as ``007`` into numbers). Column names are matched case-insensitively and stripped; extra columns
are allowed and ignored. ``row`` numbers are line numbers in ``manifest.csv`` (the header is line
1), so a user can go straight to the line in an editor.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from hilbert_pipeline.audio import AUDIO_EXTENSIONS
from hilbert_pipeline.errors import UserError

REQUIRED_COLUMNS = ("doc_id", "label", "audio", "transcript")
OPTIONAL_COLUMNS = ("group", "split")
SPLIT_VALUES = ("train", "test")


@dataclass(frozen=True)
class ManifestRow:
    """One manifest record, values stripped; empty optional values are None."""

    row: int
    doc_id: str
    label: str | None
    audio: str
    transcript: str
    group: str | None
    split: str | None


class ManifestError(UserError):
    """The manifest itself cannot be used (missing, unreadable, missing columns)."""

    def __init__(self, kind: str, message: str, file: str):
        self.kind, self.file = kind, file
        super().__init__(f"{file}: {message}")
        self.message = message


def natural_key(name: str) -> tuple:
    """Sort key where digit runs compare as numbers: ``x_1_2`` < ``x_1_10`` < ``x_2_1``."""
    parts = [p for p in re.split(r"(\d+)", name) if p != ""]
    # case-insensitive first; the exact name only breaks ties (x_01 vs x_1, X vs x)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts), name


def _delimiter(text: str) -> str:
    """``,`` unless the header has no comma and names the columns with ``;`` or a tab between
    them (what spreadsheet programs write in locales whose decimal mark is a comma)."""
    header = text.split("\n", 1)[0]
    if "," not in header:
        for sep in (";", "\t"):
            if "doc_id" in [c.strip().lower() for c in header.split(sep)]:
                return sep
    return ","


def read_manifest(path: str | Path, label_column: bool = True
                  ) -> tuple[list[ManifestRow], list[str]]:
    """Read ``manifest.csv``; return its rows and the (normalised) column names.

    ``label_column=False`` (unlabelled corpora, e.g. for inference): the ``label`` column may be
    absent, and every row then has ``label=None``.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError("manifest_missing", "manifest.csv not found", str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError("manifest_unreadable", f"cannot read as UTF-8 text ({exc})",
                            str(path)) from exc
    reader = csv.reader(text.splitlines(keepends=True), delimiter=_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ManifestError("manifest_empty", "the file is empty (no header)", str(path)) from None
    except csv.Error as exc:
        raise ManifestError("manifest_unreadable", f"CSV error: {exc}", str(path)) from exc
    columns = [c.strip().lower() for c in header]
    required = [c for c in REQUIRED_COLUMNS if label_column or c != "label"]
    missing = [c for c in required if c not in columns]
    if missing:
        raise ManifestError(
            "manifest_columns", f"missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(columns) or 'none'}; required: {', '.join(required)}; optional: "
            f"{', '.join(OPTIONAL_COLUMNS)})", str(path))
    dup = sorted({c for c in columns if c and columns.count(c) > 1})
    if dup:
        raise ManifestError("manifest_columns", f"duplicate column(s) {', '.join(dup)}", str(path))
    pos = {c: columns.index(c) for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in columns}
    rows: list[ManifestRow] = []
    try:
        for rec in reader:
            if not any(v.strip() for v in rec):
                continue  # blank line
            line = reader.line_num

            def get(col: str, rec: list[str] = rec) -> str | None:
                i = pos.get(col)
                v = rec[i].strip() if i is not None and i < len(rec) else ""
                return v or None

            rows.append(ManifestRow(line, get("doc_id") or "", get("label"), get("audio") or "",
                                    get("transcript") or "", get("group"), get("split")))
    except csv.Error as exc:
        raise ManifestError("manifest_unreadable", f"CSV error near line {reader.line_num}: {exc}",
                            str(path)) from exc
    return rows, columns


def list_clips(folder: Path) -> tuple[list[Path], list[str]]:
    """Audio clips of a clip folder in natural order, and the names of any other entries.

    Hidden entries (``.name``) are ignored; anything else that is not an audio file (by extension)
    is returned as foreign so that validation can report it instead of silently skipping it.
    """
    clips, foreign = [], []
    for p in folder.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS:
            clips.append(p)
        else:
            foreign.append(p.name + ("/" if p.is_dir() else ""))
    clips.sort(key=lambda p: natural_key(p.name))
    return clips, sorted(foreign, key=natural_key)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def transcript_name(doc_id: str, suffix: str) -> str:
    """The file name of a document's generated transcript (``transcribe``): doc ids with path
    characters are made safe and disambiguated by a short hash."""
    safe = _SAFE.sub("_", doc_id).strip("._") or "doc"
    if safe != doc_id:
        safe = f"{safe}-{hashlib.sha1(doc_id.encode()).hexdigest()[:8]}"
    return safe + suffix


def generated_transcript(folder: str | Path, doc_id: str) -> Path | None:
    """The transcript the ``transcribe`` step wrote into ``folder`` for ``doc_id``, if any."""
    for suffix in (".vtt", ".txt"):
        p = Path(folder) / transcript_name(doc_id, suffix)
        if p.is_file():
            return p.resolve()  # absolute: a relative folder is the project's, not the corpus's
    return None
