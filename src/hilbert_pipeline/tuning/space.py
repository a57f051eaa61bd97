"""The Optuna search space (docs/tuning.md) and its mapping to HilbertConfig / training keys.

Searched quantities: ``lambda_dual``, ``lambda_cka``, ``lambda_mi`` (loss weights), ``n_experts``
and ``top_k`` (MoE head), ``lr`` (training), ``dropout`` and ``d`` (model width).

Each entry of the ``search_space`` parameter is one of

* a mapping ``{low, high}`` -> a range (log scale for the loss weights and ``lr``, linear for
  ``dropout``, integers for ``n_experts``);
* a list -> a categorical choice (``d`` and ``top_k`` are always categorical);
* a scalar (or ``null`` for ``top_k``) -> fixed, not searched.

Choices made here (not fixed by the method's description):

* **0 is reachable for the loss weights.** A weight of 0 removes its loss term (an ablation), and
  a log-scale range cannot contain 0. Each weight therefore has a categorical switch
  ``<name>_on`` (True/False); only when it is on is ``<name>`` drawn log-uniformly from
  ``[low, high]``; off maps to exactly ``0.0``. This keeps the log scale where it matters and
  lets TPE learn separately whether a term helps at all. ``allow_zero: false`` drops the switch.
* **top_k <= n_experts.** Optuna's TPE needs one fixed distribution per parameter name, so
  ``top_k`` cannot have a range that depends on ``n_experts``. It is drawn from a fixed list
  (``null`` = dense softmax gate) and then clipped: a value ``>= n_experts`` means every expert
  is used, which is exactly the dense gate, so it is stored as ``None``. The effective value is
  what goes into ``best_params.json``; the raw draw stays in the trials table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hilbert_pipeline.errors import UserError

#: searched name -> (kind, log scale); kind "float" | "int" | "cat"
SEARCHED: dict[str, tuple[str, bool]] = {
    "lambda_dual": ("float", True),
    "lambda_cka": ("float", True),
    "lambda_mi": ("float", True),
    "n_experts": ("int", False),
    "top_k": ("cat", False),
    "lr": ("float", True),
    "dropout": ("float", False),
    "d": ("cat", False),
}
LAMBDAS = ("lambda_dual", "lambda_cka", "lambda_mi")


class SearchSpaceError(UserError):
    """The ``tuning.search_space`` parameter is malformed."""


@dataclass(frozen=True)
class Dimension:
    name: str
    kind: str  # "float" | "int" | "cat" | "fixed"
    log: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None
    allow_zero: bool = False


@dataclass(frozen=True)
class SearchSpace:
    dims: tuple[Dimension, ...]

    @classmethod
    def from_dict(cls, spec: dict[str, Any], source: str = "tuning.search_space") -> SearchSpace:
        """Parse and validate the parameter block; every error names ``source`` and the key."""
        if not isinstance(spec, dict):
            raise SearchSpaceError(f"{source} must be a mapping, got {type(spec).__name__}")
        unknown = sorted(set(spec) - set(SEARCHED))
        if unknown:
            raise SearchSpaceError(f"{source}: unknown keys {unknown}; allowed: {list(SEARCHED)}")
        missing = [k for k in SEARCHED if k not in spec]
        if missing:
            raise SearchSpaceError(f"{source}: missing keys {missing} (give a fixed value to "
                                   "leave one out of the search)")
        return cls(tuple(_parse_dim(k, spec[k], source) for k in SEARCHED))

    def dim(self, name: str) -> Dimension:
        for d in self.dims:
            if d.name == name:
                return d
        raise KeyError(name)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw one point with ``trial`` (an ``optuna.Trial``); return effective values by name."""
        values: dict[str, Any] = {}
        for dim in self.dims:
            if dim.kind == "fixed":
                values[dim.name] = dim.value
            elif dim.kind == "cat":
                values[dim.name] = trial.suggest_categorical(dim.name, list(dim.choices))
            elif dim.kind == "int":
                values[dim.name] = trial.suggest_int(dim.name, int(dim.low), int(dim.high))
            elif dim.allow_zero:
                on = trial.suggest_categorical(f"{dim.name}_on", [True, False])
                values[dim.name] = (trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log)
                                    if on else 0.0)
            else:
                values[dim.name] = trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log)
        return effective_values(values)

    def first_point(self) -> dict[str, Any]:
        """A deterministic point of the space (low ends, first choices), for validation."""
        values = {d.name: (d.value if d.kind == "fixed" else d.choices[0] if d.kind == "cat"
                           else d.low) for d in self.dims}
        return effective_values(values)

    def values_from_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Effective values of a finished trial from its raw ``trial.params``."""
        values: dict[str, Any] = {}
        for dim in self.dims:
            if dim.kind == "fixed":
                values[dim.name] = dim.value
            elif dim.kind == "float" and dim.allow_zero:
                values[dim.name] = (float(params[dim.name])
                                    if params.get(f"{dim.name}_on") else 0.0)
            else:
                values[dim.name] = params[dim.name]
        return effective_values(values)


def effective_values(values: dict[str, Any]) -> dict[str, Any]:
    """Apply the ``top_k`` clipping rule (``top_k >= n_experts`` -> dense gate ``None``)."""
    out = dict(values)
    top_k, n_experts = out.get("top_k"), out.get("n_experts")
    if top_k is not None and n_experts is not None and top_k >= n_experts:
        out["top_k"] = None
    return out


def split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split effective values into (HilbertConfig overrides, training-parameter overrides)
    (the routing is :func:`training.params.route`'s)."""
    from hilbert_pipeline.training.params import route

    model, training, other = route(values)
    if other:
        raise SearchSpaceError(f"search-space keys {sorted(other)} are neither HilbertConfig nor "
                               "TrainingParams fields")
    return model, training


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _parse_dim(name: str, spec: Any, source: str) -> Dimension:
    kind, log = SEARCHED[name]
    where = f"{source}.{name}"
    if isinstance(spec, list):
        if not spec:
            raise SearchSpaceError(f"{where}: empty list of choices")
        for v in spec:
            _check_value(name, v, where)
        if len(set(map(repr, spec))) != len(spec):
            raise SearchSpaceError(f"{where}: duplicate choices {spec}")
        return Dimension(name, "cat", choices=tuple(spec))
    if isinstance(spec, dict):
        if kind == "cat":
            raise SearchSpaceError(f"{where}: give a list of choices (or one fixed value), "
                                   f"not a range")
        extra = sorted(set(spec) - {"low", "high", "allow_zero"})
        if extra or "low" not in spec or "high" not in spec:
            raise SearchSpaceError(f"{where}: a range needs exactly `low` and `high`"
                                   f"{' (and optional `allow_zero`)' if name in LAMBDAS else ''}"
                                   f", got {sorted(spec)}")
        low, high = spec["low"], spec["high"]
        allow_zero = spec.get("allow_zero", name in LAMBDAS)
        if "allow_zero" in spec and name not in LAMBDAS:
            raise SearchSpaceError(f"{where}: allow_zero is only for {list(LAMBDAS)}")
        if not isinstance(allow_zero, bool):
            raise SearchSpaceError(f"{where}.allow_zero must be true/false, got {allow_zero!r}")
        if kind == "int":
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
                raise SearchSpaceError(f"{where}: low/high must be integers, got {low!r}/{high!r}")
        elif not (_is_num(low) and _is_num(high)):
            raise SearchSpaceError(f"{where}: low/high must be numbers, got {low!r}/{high!r}")
        if not low < high:
            raise SearchSpaceError(f"{where}: need low < high, got {low!r} >= {high!r}")
        _check_value(name, low, where)
        _check_value(name, high, where)
        if log and low <= 0:
            raise SearchSpaceError(f"{where}: log-scale range needs low > 0, got {low!r} (0 is "
                                   "reached through the on/off switch)")
        return Dimension(name, kind, log=log, low=low, high=high, allow_zero=allow_zero)
    _check_value(name, spec, where)
    return Dimension(name, "fixed", value=spec)


def _check_value(name: str, v: Any, where: str) -> None:
    ok: bool
    if name == "top_k":
        ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
        want = "null or an integer >= 1"
    elif name in ("n_experts", "d"):
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= 1
        want = "an integer >= 1"
    elif name == "dropout":
        ok = _is_num(v) and 0 <= v < 1
        want = "a number in [0, 1)"
    elif name == "lr":
        ok = _is_num(v) and v > 0
        want = "a number > 0"
    else:
        ok = _is_num(v) and v >= 0
        want = "a number >= 0"
    if not ok:
        raise SearchSpaceError(f"{where}: {v!r} is not {want}")
