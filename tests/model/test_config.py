"""HilbertConfig validation and checkpoint round trip."""

from __future__ import annotations

import io
import json

import pytest
import torch
from model_test_helpers import make_batch, tiny_config

from hilbert_pipeline.model import ConfigError, HilbertConfig, HilbertModel


@pytest.mark.parametrize("overrides,match", [
    ({"d": 15, "n_heads": 2}, "not divisible"),
    ({"top_k": 5, "n_experts": 3}, "top_k=5 exceeds n_experts=3"),
    ({"alignment": "diagonal"}, "alignment must be one of"),
    ({"head": "transformer"}, "head must be one of"),
    ({"modalities": "video"}, "modalities must be one of"),
    ({"cka_source": "raw"}, "cka_source"),
    ({"class_loss": "hinge"}, "class_loss"),
    ({"dropout": 1.0}, "dropout"),
    ({"attention_dropout": -0.1}, "attention_dropout must be in"),
    ({"lambda_cka": -0.1}, "lambda_cka"),
    ({"lambda_mi": float("nan")}, "lambda_mi"),
    ({"temperature_init": 5.0}, "temperature_min <= temperature_init"),
    ({"n_classes": 1}, "n_classes"),
    ({"d": 16.0}, "d must be an integer"),
    ({"position_encoding": "yes"}, "position_encoding must be a bool"),
    ({"text_dim": 0}, "text_dim"),
    ({"wide_combine": "sum"}, "wide_combine must be one of"),
    ({"wide_weight": "half"}, "wide_weight must be 'auto' or a number in"),
    ({"wide_weight": 1.5}, "wide_weight must be"),
    ({"wide_weight": -0.25}, "wide_weight must be"),
    ({"wide_weight": True}, "wide_weight must be"),
])
def test_invalid_configs_raise(overrides, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**overrides)


def test_validate_reports_every_problem_and_catches_mutation():
    cfg = tiny_config()
    cfg.d = 15
    cfg.head = "x"
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert "not divisible" in str(e.value) and "head must be one of" in str(e.value)
    with pytest.raises(ConfigError):
        HilbertModel(cfg)


def test_unused_modality_may_have_zero_width():
    cfg = tiny_config(modalities="audio", text_dim=0)
    assert cfg.head_in_dim == cfg.d


def test_round_trip_rebuilds_identical_model():
    cfg = tiny_config(top_k=2, alignment="direct", pool_combine="mean", max_segments=50)
    d = json.loads(json.dumps(cfg.to_dict()))  # survives JSON
    assert HilbertConfig.from_dict(d) == cfg
    torch.manual_seed(0)
    model = HilbertModel(cfg).eval()
    buf = io.BytesIO()
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    torch.manual_seed(123)  # different init, overwritten by the state dict
    rebuilt = HilbertModel(HilbertConfig.from_dict(ckpt["config"]))
    rebuilt.load_state_dict(ckpt["state_dict"])
    rebuilt.eval()
    batch = make_batch(b=3, n=5)
    assert torch.equal(model(*batch).logits, rebuilt(*batch).logits)


def test_from_dict_rejects_unknown_and_missing_keys():
    d = tiny_config().to_dict()
    with pytest.raises(ConfigError, match="unknown HilbertConfig keys: \\['lamda_cka'\\]"):
        HilbertConfig.from_dict({**d, "lamda_cka": 0.3})
    del d["audio_dim"]
    with pytest.raises(ConfigError, match="missing required keys: \\['audio_dim'\\]"):
        HilbertConfig.from_dict(d)
    with pytest.raises(ConfigError, match="unknown"):
        tiny_config().replace(colour="red")


def test_prediction_form_of_a_config():
    cfg = tiny_config(wide_path=True)
    assert cfg.wide_combine == "mixture" and cfg.prediction_form == "mixture"  # the default
    for form in ("mixture", "wide", "residual"):
        assert cfg.replace(wide_combine=form).prediction_form == form
    assert cfg.replace(wide_path=False, wide_combine="mixture").prediction_form == "deep"
    with pytest.raises(ConfigError, match="constant predictor"):
        cfg.replace(wide_combine="wide", wide_init="zero")
    with pytest.raises(ConfigError, match="one of"):
        cfg.replace(wide_combine="auto")  # the old default that chose a bare regression


@pytest.mark.parametrize("wide_path,combine,name,trains,own,averages", [
    (False, "mixture", "deep", True, False, False),
    (False, "wide", "deep", True, False, False),
    (True, "mixture", "mixture", True, True, True),
    (True, "residual", "residual", True, False, False),
    (True, "wide", "wide", False, True, False),
])
def test_prediction_form_is_the_one_answer_to_what_predicts(wide_path, combine, name, trains,
                                                             own, averages):
    from hilbert_pipeline.model import PredictionForm

    cfg = tiny_config(wide_path=wide_path, wide_combine=combine)
    form = cfg.prediction
    assert form == PredictionForm.of(wide_path, combine) and form.name == name
    assert cfg.prediction_form == name
    assert form.linear_member == wide_path
    assert (form.trains_network, form.network_on_its_own, form.averages_members) == (
        trains, own, averages)
    assert form.description
