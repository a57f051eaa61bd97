"""User mistakes vs bugs: which exceptions are the project's own messages to its user.

A corpus that fails validation, parameters that do not fit, a missing local model folder, a
checkpoint that does not match: each raises one of the classes below with a message that says
what is wrong, where, and what to do. ``kedro run`` (``hilbert_pipeline.cli``) prints that message
alone and exits non-zero; a traceback is printed only for other exceptions (bugs) or when
``HILBERT_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

#: (module, class name) of every user-facing error; looked up lazily, since an exception of a
#: class can only exist once its module is imported
USER_ERRORS = (
    ("hilbert_pipeline.corpus.validation", "CorpusValidationError"),
    ("hilbert_pipeline.corpus.manifest", "ManifestError"),
    ("hilbert_pipeline.corpus.transcripts", "TranscriptError"),
    ("hilbert_pipeline.audio", "AudioError"),
    ("hilbert_pipeline.model.config", "ConfigError"),
    ("hilbert_pipeline.experiment.params", "ParamsError"),
    ("hilbert_pipeline.experiment.folds", "FoldError"),
    ("hilbert_pipeline.experiment.data", "DataError"),
    ("hilbert_pipeline.experiment.data", "LabelError"),
    ("hilbert_pipeline.experiment.trainer", "TrainingError"),
    ("hilbert_pipeline.experiment.checkpoint", "CheckpointError"),
    ("hilbert_pipeline.experiment.methods", "MethodError"),
    ("hilbert_pipeline.experiment.inference", "InferenceError"),
    ("hilbert_pipeline.encoders.base", "EncoderError"),
    ("hilbert_pipeline.encoders.features", "SegmentsError"),
    ("hilbert_pipeline.tuning.study", "TuningConfigError"),
    ("hilbert_pipeline.tuning.space", "SearchSpaceError"),
    ("hilbert_pipeline.tuning.objective", "TuningDataError"),
    ("hilbert_pipeline.tuning.report", "NoCompletedTrialError"),
    ("hilbert_pipeline.demo.synthesis", "SynthesisError"),
    ("hilbert_pipeline.demo.regimes", "RegimeError"),
    ("hilbert_pipeline.cluster", "ClusterError"),
)


def user_error(exc: BaseException) -> BaseException | None:
    """The project's own user-facing error in ``exc`` or its causes, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for module, name in USER_ERRORS:
            cls = getattr(sys.modules.get(module), name, None)
            if cls is not None and isinstance(exc, cls):
                return exc
        exc = exc.__cause__ or exc.__context__
    return None


def debug() -> bool:
    """``HILBERT_DEBUG=1``: show tracebacks of user errors too."""
    return os.environ.get("HILBERT_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def user_message(exc: BaseException) -> str:
    """The block printed for a user error: the message, then how to see more."""
    return (f"Error: {exc}\n(the run stopped at this step; set HILBERT_DEBUG=1 to see the "
            "traceback)")
