"""What a trained checkpoint promises inference, and the checks that hold inference to it.

The training node records (:func:`training_contract`) the segmentation rules and the class
definition (``label_map``, ``min_class_size``); the checkpoint also carries the frozen encoders
(name, options, version, width). :func:`check_parameters` compares that record with the
parameters of an inference run *before* any audio is read, and :func:`check_feature_meta` with
the features actually computed; a difference is refused with one message that names both sides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from hilbert_pipeline.corpus import SegmentationConfig
from hilbert_pipeline.corpus.speakers import SpeakerOptions
from hilbert_pipeline.errors import UserError

#: encoder fields that must agree between training and inference
ENCODER_FIELDS = ("name", "dim", "version", "options")
#: options that only say where a model folder lives; the version identifies its weights
LOCATION_OPTIONS = ("path",)


class InferenceError(UserError):
    """The model cannot be applied as asked: a mismatch with its training, or unusable input."""


def training_contract(segmentation: Mapping[str, Any], label_map: Mapping[str, str] | None,
                      min_class_size: int) -> dict[str, Any]:
    """What a checkpoint records so that inference reproduces its inputs (``extra["contract"]``):
    the segmentation rules with the speaker selection (``speakers``: keep and context; the clip
    pattern only says where names come from), the class definition."""
    seg = asdict(SegmentationConfig.from_params(dict(segmentation)))
    sp = SpeakerOptions.from_params(dict(segmentation).get("speakers")).as_dict()
    seg["speakers"] = {"keep": sp["keep"], "context": sp["context"]}
    return {"segmentation": seg,
            "label_map": {str(k): str(v) for k, v in dict(label_map or {}).items()},
            "min_class_size": int(min_class_size)}


def _encoder_view(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if meta is None:
        return None
    view = {k: meta.get(k) for k in ENCODER_FIELDS}
    view["options"] = {k: v for k, v in dict(view["options"] or {}).items()
                       if k not in LOCATION_OPTIONS}
    return json.loads(json.dumps(view, sort_keys=True, default=str))


def _describe(meta: Mapping[str, Any] | None) -> str:
    if meta is None:
        return "no encoder (modality off)"
    opts = ", ".join(f"{k}={v}" for k, v in sorted(dict(meta.get("options") or {}).items()))
    return f"{meta.get('name')} ({meta.get('version')}, {meta.get('dim')}-d" + \
        (f", {opts})" if opts else ")")


def encoder_mismatches(trained: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """One sentence per modality whose encoder differs between two ``encoder_meta`` dicts."""
    out = []
    for role in ("audio_encoder", "text_encoder"):
        a, b = trained.get(role), current.get(role)
        if _encoder_view(a) != _encoder_view(b):
            out.append(f"{role}: the model was trained with {_describe(a)}, the parameters now "
                       f"give {_describe(b)}")
    return out


def check_parameters(extra: Mapping[str, Any], encoder_meta: Mapping[str, Any],
                     segmentation: Mapping[str, Any], label_map: Mapping[str, str] | None,
                     current_encoders: Mapping[str, Any], model_path: str) -> None:
    """Refuse (``InferenceError``) when the run's parameters differ from the model's training.

    ``current_encoders``: ``{"audio_encoder": describe() or None, "text_encoder": ...}`` of the
    encoders the embedding parameters build now.
    """
    contract = extra.get("contract")
    if not contract:
        raise InferenceError(
            f"{model_path} records no segmentation parameters or class definition (it was "
            "trained before inference existed): retrain it with `kedro run --pipelines training`")
    problems = encoder_mismatches(encoder_meta, current_encoders)
    now = training_contract(segmentation, label_map, contract.get("min_class_size", 1))
    for key, value in contract["segmentation"].items():
        if now["segmentation"].get(key) != value:
            problems.append(f"segmentation.{key}: the model was trained with {value!r}, the "
                            f"parameters now say {now['segmentation'].get(key)!r}")
    if now["label_map"] != contract["label_map"]:
        problems.append(f"label_map: the model was trained with {contract['label_map']}, the "
                        f"parameters now say {now['label_map']}")
    if problems:
        raise InferenceError(
            f"the model {model_path} does not match this run's parameters:\n  - "
            + "\n  - ".join(problems)
            + "\nUse the parameters the model was trained with (conf/base or --params), or "
              "retrain the model with the new ones (`kedro run --pipelines training`).")


def check_feature_meta(encoder_meta: Mapping[str, Any], features_meta: Mapping[str, Any],
                       model_path: str) -> None:
    """Refuse features computed by other encoders than the model's."""
    problems = encoder_mismatches(encoder_meta, features_meta)
    if problems:
        raise InferenceError(f"the features do not match the model {model_path}:\n  - "
                             + "\n  - ".join(problems)
                             + "\nRe-run the inference pipeline with the model's encoders.")
