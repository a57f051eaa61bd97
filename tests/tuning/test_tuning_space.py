"""Search-space parsing and the value mapping to HilbertConfig / training keys."""

from __future__ import annotations

import copy

import optuna
import pytest
from tuning_tiny import TINY_SPACE

from hilbert_pipeline.model import HilbertConfig
from hilbert_pipeline.tuning import SearchSpace, SearchSpaceError, split_values
from hilbert_pipeline.tuning.space import SEARCHED, effective_values


def test_every_searchable_key_is_routed_to_a_config_or_training_field():
    """split_values (training.params.route) sends every searchable name to HilbertConfig or
    TrainingParams; none is left over."""
    model, training = split_values({k: 1 for k in SEARCHED})
    assert set(model) <= set(HilbertConfig.__dataclass_fields__)
    assert set(model) | set(training) == set(SEARCHED) and training == {"lr": 1}


@pytest.mark.parametrize("key,value,message", [
    ("lambda_cka", {"low": 0.0, "high": 1.0}, "log-scale range needs low > 0"),
    ("n_experts", {"low": 4, "high": 2}, "need low < high"),
    ("n_experts", {"low": 1.5, "high": 3}, "must be integers"),
    ("top_k", [0, 1], "is not null or an integer >= 1"),
    ("d", {"low": 8, "high": 16}, "give a list of choices"),
    ("dropout", 1.2, "is not a number in [0, 1)"),
    ("lr", {"low": 1e-4, "hi": 1e-2}, "a range needs exactly `low` and `high`"),
    ("dropout", {"low": 0.0, "high": 0.2, "allow_zero": True}, "allow_zero is only for"),
])
def test_bad_space_is_rejected_with_the_key_named(key, value, message):
    spec = copy.deepcopy(TINY_SPACE)
    spec[key] = value
    with pytest.raises(SearchSpaceError, match=rf"tuning\.search_space\.{key}.*") as err:
        SearchSpace.from_dict(spec)
    assert message in str(err.value)


def test_unknown_and_missing_keys():
    with pytest.raises(SearchSpaceError, match="unknown keys.*'lamda_mi'"):
        SearchSpace.from_dict({**TINY_SPACE, "lamda_mi": 0.1})
    spec = dict(TINY_SPACE)
    del spec["lr"]
    with pytest.raises(SearchSpaceError, match=r"missing keys \['lr'\]"):
        SearchSpace.from_dict(spec)


def test_top_k_at_or_above_n_experts_is_the_dense_gate():
    assert effective_values({"top_k": 4, "n_experts": 4})["top_k"] is None
    assert effective_values({"top_k": 8, "n_experts": 2})["top_k"] is None
    assert effective_values({"top_k": 1, "n_experts": 2})["top_k"] == 1
    assert effective_values({"top_k": None, "n_experts": 2})["top_k"] is None


def test_lambdas_reach_zero_and_every_draw_builds_a_valid_config():
    space = SearchSpace.from_dict(TINY_SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    zeros = {"lambda_dual": 0, "lambda_cka": 0, "lambda_mi": 0}
    positives = dict(zeros)
    for _ in range(60):
        trial = study.ask()
        values = space.suggest(trial)
        model, training = split_values(values)
        HilbertConfig(audio_dim=8, text_dim=6, n_classes=3, n_heads=2, **model)
        assert set(training) == {"lr"} and 1e-3 <= training["lr"] <= 1e-2
        for k in zeros:
            if values[k] == 0.0:
                zeros[k] += 1
                assert trial.params[f"{k}_on"] is False and k not in trial.params
            else:
                positives[k] += 1
                assert 0.01 <= values[k] <= 1.0
        # the stored raw params map back to the same effective values
        assert space.values_from_params(trial.params) == values
        study.tell(trial, 0.0)
    assert all(v > 0 for v in zeros.values()) and all(v > 0 for v in positives.values())


def test_fixed_values_are_not_searched():
    spec = {**TINY_SPACE, "d": 16, "top_k": None, "lambda_mi": 0.0,
            "lambda_dual": {"low": 0.1, "high": 1.0, "allow_zero": False}}
    space = SearchSpace.from_dict(spec)
    trial = optuna.create_study().ask()
    values = space.suggest(trial)
    assert values["d"] == 16 and values["top_k"] is None and values["lambda_mi"] == 0.0
    assert values["lambda_dual"] > 0
    assert not {"d", "top_k", "lambda_mi", "lambda_mi_on", "lambda_dual_on"} & set(trial.params)
