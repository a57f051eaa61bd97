"""The one owner of configuration assembly: parameters -> ``HilbertConfig`` + ``TrainingParams``.

:func:`route` sends flat keys to the model config, the training parameters or neither (used for
tuned parameters, method overrides and search-space points alike); :func:`build_config` adds the
data's feature widths and class count to model parameters; :func:`resolve_training_settings`
turns the ``training:`` block into model hyper-parameters + optimisation settings.

Layout of ``conf/base/parameters_training.yml``::

    training:
      seed: 42
      device: auto
      progress: true
      use_tuned: false
      best_params_path: data/06_models/best_params.json
      model: {d: 64, ...}       # HilbertConfig fields (widths and n_classes come from the data)
      optim: {epochs: 40, ...}  # TrainingParams fields

With ``use_tuned: true`` the JSON at ``best_params_path`` (written by the tuning pipeline; a flat
object whose keys are ``HilbertConfig`` or ``TrainingParams`` field names) overrides ``model`` and
``optim``. An unknown key there is an error, as is a missing file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilbert_pipeline.errors import UserError
from hilbert_pipeline.model import HilbertConfig
from hilbert_pipeline.training.trainer import TrainingParams
from hilbert_pipeline.utils import reject_unknown_keys


class ParamsError(UserError):
    """The training parameters or the tuned-parameters file are invalid."""


@dataclass
class TrainingSettings:
    model_params: dict[str, Any]  # HilbertConfig fields except audio_dim/text_dim/n_classes
    training_params: dict[str, Any]  # TrainingParams fields
    seed: int
    source: str  # "parameters" or the tuned JSON path
    tuned: dict[str, Any]


TOP_KEYS = {"seed", "device", "progress", "use_tuned", "best_params_path", "model", "optim"}
#: HilbertConfig fields that come from the data, never from parameters
DATA_FIELDS = ("audio_dim", "text_dim", "n_classes")


def model_fields() -> set[str]:
    """``HilbertConfig`` fields a parameter may set (all but :data:`DATA_FIELDS`)."""

    return {f.name for f in dataclasses.fields(HilbertConfig)} - set(DATA_FIELDS)


def training_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainingParams)}


def route(values: Mapping[str, Any] | None) -> tuple[dict, dict, dict]:
    """Flat keys -> ``(HilbertConfig fields, TrainingParams fields, anything else)``."""
    model_keys, training_keys = model_fields(), training_fields()
    model, training, other = {}, {}, {}
    for k, v in (values or {}).items():
        (model if k in model_keys else training if k in training_keys else other)[k] = v
    return model, training, other


def build_config(docs, model_params: Mapping[str, Any], **changes: Any):
    """``HilbertConfig`` with the data's feature widths / class count and the given settings."""

    clash = sorted(set(DATA_FIELDS) & (set(model_params) | set(changes)))
    if clash:
        raise ParamsError(f"{clash} are taken from the data and cannot be set in parameters")
    return HilbertConfig.from_dict({"audio_dim": docs.audio_dim, "text_dim": docs.text_dim,
                                    "n_classes": docs.n_classes, **dict(model_params),
                                    **changes})


def resolve_training_settings(training: Mapping[str, Any]) -> TrainingSettings:
    """Validate the ``training`` block and apply the tuned parameters when asked."""
    reject_unknown_keys("parameters 'training'", training, TOP_KEYS, ParamsError)
    if "seed" not in training:
        raise ParamsError("parameters 'training' needs an explicit 'seed'")
    model = dict(training.get("model") or {})
    optim = dict(training.get("optim") or {})
    cfg_fields, tr_fields = model_fields(), training_fields()
    reject_unknown_keys("training.model", model, cfg_fields, ParamsError, "HilbertConfig fields")
    for k in ("device", "progress"):
        if k in optim:
            raise ParamsError(f"set training.{k}, not training.optim.{k}")
    reject_unknown_keys("training.optim", optim, tr_fields, ParamsError, "TrainingParams fields")
    optim["device"] = training.get("device", "auto")
    optim["progress"] = bool(training.get("progress", False))
    source, tuned = "parameters", {}
    if training.get("use_tuned", False):
        path = Path(training.get("best_params_path") or "data/06_models/best_params.json")
        tuned = read_best_params(path)
        t_model, t_optim, other = route(tuned)
        other.update({k: v for k, v in t_optim.items() if k in ("device", "progress")})
        if other:
            raise ParamsError(f"{path}: key '{sorted(other)[0]}' is neither a HilbertConfig nor "
                              f"a TrainingParams field")
        model.update(t_model)
        optim.update(t_optim)
        source = str(path)
    TrainingParams.from_dict(optim)  # validate now, before any data work
    return TrainingSettings(model, optim, int(training["seed"]), source, tuned)


def read_best_params(path: str | Path) -> dict[str, Any]:
    """Read the tuning pipeline's best-parameters JSON (a flat object)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"training.use_tuned is true but {path} does not exist: run the tuning "
                          f"pipeline first (`kedro run --pipelines tuning`) or set use_tuned: "
                          f"false")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ParamsError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must hold a JSON object of parameter name -> value")
    return data
