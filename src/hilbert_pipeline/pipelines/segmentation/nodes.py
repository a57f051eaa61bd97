"""Nodes of the ``segmentation`` pipeline: configuration wiring only (logic: ``corpus``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from hilbert_pipeline.corpus import (
    SegmentationConfig,
    ValidationResult,
    load_corpus,
    segment_corpus,
)
from hilbert_pipeline.training.params import ParamsError

logger = logging.getLogger(__name__)

#: where the demo corpus is built by default (conf/base/parameters.yml ``corpus``)
DEFAULT_DEMO_CORPUS = "data/01_raw/sotu"
_VALIDATION_OPTIONS = ("require_labels", "min_docs_per_label", "exclude_invalid",
                       "exclude_rare_labels", "duration_tolerance", "overlap_tolerance",
                       "speakers", "rolling_captions")


def validate_corpus_node(corpus: str, params: dict, transcription: dict | None = None,
                         label_map: dict | None = None) -> ValidationResult:
    """Validate the corpus folder ``corpus``; on problems write the report and fail the run.
    ``transcription``: the transcribe node's report (where it wrote the transcripts);
    ``label_map``: the shared ``classes.label_map`` (labels are counted as the classes it makes).

    The report is written here (to ``report_path``) and not only through the catalog because a
    failed node's outputs are never saved, and the user needs the report precisely then.
    """
    if not corpus:
        raise ParamsError("parameter 'corpus' is empty: pass --params corpus=/path/to/corpus")
    hint = None
    if Path(corpus).resolve() == Path(DEFAULT_DEMO_CORPUS).resolve():
        hint = ("This is the default demo corpus path: build it first with "
                "`kedro run --pipelines demo_data` (or `make demo`), or choose your own corpus "
                "with `kedro run --params corpus=/path/to/corpus`.")
    options = {k: params[k] for k in _VALIDATION_OPTIONS if k in params}
    if transcription and transcription.get("enabled"):
        options["generated_transcripts"] = transcription["output_dir"]
    result = load_corpus(corpus, report_path=params.get("report_path"),
                         progress=bool(params.get("progress", True)), default_corpus_hint=hint,
                         label_map=label_map, **options)
    rep = result.report
    logger.info("corpus %s: %d of %d documents valid, %d excluded", rep["corpus"],
                rep["n_documents"], rep["n_rows"], len(rep["excluded"]))
    keep = rep["options"]["speakers"]["keep"]
    if keep != "all":
        kept = sum(d["kept_cues"] for d in rep["speakers"].values())
        total = sum(s["cues"] for d in rep["speakers"].values() for s in d["speakers"].values())
        logger.info("speakers kept %s: %d of %d cues", keep, kept, total)
    rolled = [k for k, d in rep["speakers"].items() if d.get("rolling_captions", {}).get("applied")]
    if rolled:
        logger.info("rolling captions de-duplicated in %d document(s): %s", len(rolled),
                    ", ".join(rolled[:5]) + (" ..." if len(rolled) > 5 else ""))
    return result


def segment_corpus_node(
    validated: ValidationResult, params: dict
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Cut every valid document into segments; return ``segments``, ``documents``, the report."""
    cfg = SegmentationConfig.from_params(params)
    segments, documents, stats = segment_corpus(validated.documents, cfg,
                                                progress=bool(params.get("progress", True)))
    report = dict(validated.report)
    report["segmentation"] = stats
    logger.info("%d segments from %d documents (%d capped at max_segments=%s)",
                stats["n_segments"], stats["n_documents"], stats["n_documents_capped"],
                cfg.max_segments)
    return segments, documents, report
