"""Every pipeline's parameters checked when a run starts, before any heavy work (the project's
Kedro hook, :class:`hilbert_pipeline.hooks.ParameterCheckHook`, calls
:func:`check_run_parameters`): each block is handed to the owner of its settings."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from hilbert_pipeline.corpus.segmentation import SegmentationConfig
from hilbert_pipeline.corpus.speakers import SpeakerOptions, check_rolling_mode
from hilbert_pipeline.evaluation.methods import METHODS, resolve_methods
from hilbert_pipeline.model import HilbertConfig
from hilbert_pipeline.training.params import ParamsError, resolve_training_settings, route
from hilbert_pipeline.transcribe.whisper import TranscribeOptions
from hilbert_pipeline.tuning.run import parse_tuning_params
from hilbert_pipeline.utils import check_device_name, int_at_least, reject_unknown_keys

#: the keys of the ``evaluation`` parameter block
EVAL_KEYS = frozenset({"n_splits", "n_repeats", "seed", "methods", "method_overrides", "ci",
                       "progress", "n_jobs"})


def check_run_parameters(blocks: Mapping[str, Any]) -> None:
    """Validate the parameter blocks a run will use, before any node runs (the project's Kedro
    hook calls this): ``training`` (every model and optimisation field, as the training,
    evaluation and tuning nodes will read them), ``evaluation`` (keys, methods and their
    overrides) and ``segmentation``. A problem is a :class:`ParamsError` naming the block, so
    a typo is reported in seconds instead of after segmentation and embedding."""
    def block(name: str, check) -> None:
        if name not in blocks:
            return
        try:
            check(blocks[name] or {})
        except ParamsError:
            raise
        except ValueError as e:  # the owners' own validation errors, named by block
            raise ParamsError(f"parameters '{name}': {e}") from e

    def device(values: Mapping[str, Any]) -> None:  # a device name (its GPU may be a worker's)
        check_device_name(str(values.get("device", "auto")))

    def training(values: Mapping[str, Any]) -> None:
        device(values)
        settings = resolve_training_settings(values)
        HilbertConfig.from_dict({"audio_dim": 1, "text_dim": 1, "n_classes": 2,
                                 **settings.model_params})

    def evaluation(values: Mapping[str, Any]) -> None:
        reject_unknown_keys("parameters 'evaluation'", values, EVAL_KEYS, ParamsError)
        for key, least in (("n_splits", 2), ("n_repeats", 1), ("n_jobs", 1), ("seed", None)):
            v = values.get(key)
            if key in values and not int_at_least(v, -math.inf if least is None else least):
                want = "an integer" + (f" >= {least}" if least is not None else "")
                raise ParamsError(f"evaluation.{key} must be {want}, got {v!r}")
        if values.get("ci", "corrected_t") not in ("corrected_t", "t"):
            raise ParamsError(f"evaluation.ci must be 'corrected_t' or 't', got {values['ci']!r}")
        if not isinstance(values.get("progress", True), bool):
            raise ParamsError(f"evaluation.progress must be true or false, got "
                              f"{values['progress']!r}")
        resolve_methods(list(values.get("methods") or []))
        overrides = values.get("method_overrides") or {}
        stray = sorted(set(overrides) - set(METHODS))
        if stray:
            raise ParamsError(f"evaluation.method_overrides names unknown methods {stray}")
        for name, over in overrides.items():
            _, _, other = route(over)
            if other and METHODS[name].kind == "neural":
                raise ParamsError(f"evaluation.method_overrides.{name}: unknown keys "
                                  f"{sorted(other)} (HilbertConfig or TrainingParams fields)")
        if "seed" not in values:
            raise ParamsError("parameters 'evaluation' needs an explicit 'seed'")

    block("training", training)
    block("embedding", device)
    block("inference", device)
    block("evaluation", evaluation)
    block("tuning", parse_tuning_params)
    block("transcribe", lambda v: TranscribeOptions.from_params(dict(v)))
    block("segmentation", lambda v: (SegmentationConfig.from_params(dict(v)),
                                     SpeakerOptions.from_params(dict(v).get("speakers")),
                                     check_rolling_mode(dict(v).get("rolling_captions", "auto"))))


def check_runtime_names(runtime: Mapping[str, Any] | None, known: Iterable[str]) -> None:
    """Every parameter given on the command line (``kedro run --params a.b=1``) must name a
    block the configuration has: Kedro itself adds a misspelt name (``trainig.optim.epochs``) as
    a new parameter that nothing reads, and the run would go on with the default."""
    known = sorted(known)
    for name in runtime or {}:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ParamsError(f"--params names an unknown parameter '{name}' ({hint}the "
                              f"parameters are: {', '.join(known)})")
