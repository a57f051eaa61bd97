"""Pure PyTorch HILBERT library (docs/model.md): config, model, MoE head, CKA and losses.

No Kedro import here: the pipelines wire this library, they do not live in it.
See ``docs/model.md`` for the architecture and every reconstruction choice.
"""

from .cka import linear_cka
from .config import ConfigError, HilbertConfig, PredictionForm
from .layers import (
    AttentivePooling,
    CrossAttentionBlock,
    ModalityProjection,
    sinusoidal_positions,
)
from .losses import (
    CKALoss,
    ClassificationLoss,
    DirectContrastiveLoss,
    DistillationLoss,
    DualContrastiveLoss,
    HilbertLoss,
    MIBalanceLoss,
    class_weights,
    info_nce,
    mi_estimates,
)
from .model import MEMBERS, HilbertModel, HilbertOutput, ModelInputError
from .moe import MLPClassifier, MoEClassifier

__all__ = [
    "MEMBERS",
    "PredictionForm",
    "AttentivePooling",
    "CKALoss",
    "ClassificationLoss",
    "ConfigError",
    "CrossAttentionBlock",
    "DirectContrastiveLoss",
    "DistillationLoss",
    "DualContrastiveLoss",
    "HilbertConfig",
    "HilbertLoss",
    "HilbertModel",
    "HilbertOutput",
    "MIBalanceLoss",
    "mi_estimates",
    "MLPClassifier",
    "ModalityProjection",
    "ModelInputError",
    "MoEClassifier",
    "class_weights",
    "info_nce",
    "linear_cka",
    "sinusoidal_positions",
]
