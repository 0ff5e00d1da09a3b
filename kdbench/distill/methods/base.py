"""The distiller base class: frozen teacher, option handling, task checks."""

from __future__ import annotations

import ast
import math
from typing import Any, ClassVar

import torch
from torch import nn

from kdbench.data.contract import TASKS, DatasetInfo
from kdbench.distill.features import FeatureTap
from kdbench.errors import ConfigError, UnsupportedTaskError


class Distiller(nn.Module):
    """Base class of every KD method.

    Subclasses set ``defaults`` (every accepted option with its default value), ``paper``
    (the source of the defaults) and, if they cannot handle every task, ``tasks``.
    ``progress`` (0 to 1 over the whole training) and ``epoch`` are set by the trainer
    before each step, for schedules such as DKD's warm-up or FitNets' two stages.

    ``forward`` returns its loss terms *with their graph* (the trainer detaches them for
    logging): ``required_terms`` names the terms that must give the student a non-zero
    gradient, and the trainer checks each at its first step (:mod:`.term_check`); left
    as ``None``, every named scalar term is checked. ``presets`` maps a name to a set of
    option values (for example the reference code's own configuration), chosen with the
    option ``preset=<name>``; options given explicitly override the preset's.

    A method that takes everything it needs from the teacher through :meth:`from_teacher`
    (or :meth:`teacher_logits`), never from a hook's last value, sets
    ``teacher_cacheable = True``: the trainer then computes those outputs once per training
    set instead of on every step (:mod:`kdbench.distill.teacher_cache`).

    ``code_version``: change it when the method's code changes what its rows contain (a
    fixed equation, another default layer). It is part of the method's job identity, so a
    re-run recomputes that method's finished jobs and keeps every other method's.
    """

    defaults: ClassVar[dict[str, Any]] = {}
    paper: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = TASKS
    uses_teacher: ClassVar[bool] = True
    required_terms: ClassVar[tuple[str, ...] | None] = None
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    teacher_cacheable: ClassVar[bool] = False
    code_version: ClassVar[str | None] = None
    #: Whether ``forward`` also runs the teacher on something other than ``x`` (MED-TEX's masked
    #: images). A cacheable method that does not (``False``) lets the float64 term check take the
    #: teacher's outputs from the cache instead of re-running the teacher in float64.
    teacher_live: ClassVar[bool] = True

    def __init__(self, student: nn.Module, teacher: nn.Module | None, info: DatasetInfo, **options):
        super().__init__()
        name = getattr(self, "method_name", type(self).__name__)
        if info.task not in self.tasks:
            raise UnsupportedTaskError(
                f"method {name} does not support the {info.task} task of dataset {info.name} "
                f"(it supports: {', '.join(self.tasks)})"
            )
        self.opts = resolve_options(name, self.defaults, options, self.presets)
        self.check_options(self.opts)
        self.info = info
        self.task = info.task
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        self.progress = 0.0
        self.epoch = 0
        self._taps: list[FeatureTap] = []
        self._teacher_taps: list[FeatureTap] = []
        self.cached_teacher: dict[str, torch.Tensor] | None = None  # set per step by the trainer

    @classmethod
    def check_options(cls, opts: dict[str, Any]) -> None:
        """Refuse option values outside the method's domain (raise :class:`ConfigError`).

        Called with the resolved options, by the constructor and by the pre-flight checks,
        so a bad value is one line before any training. The base class accepts anything.
        """

    def tap(self, model: nn.Module, names: list[str], **kwargs) -> FeatureTap:
        """Hook named modules of ``model`` for this method; undone by :meth:`release`.

        Taps on the teacher become teacher targets (``feature:<name>`` in :meth:`from_teacher`).
        """
        t = FeatureTap(model, names, **kwargs)
        self._taps.append(t)
        if model is self.teacher:
            self._teacher_taps.append(t)
        return t

    def release(self) -> None:
        """Remove every forward hook, so the (shared, cached) teacher leaves clean."""
        for t in self._taps:
            t.remove()
        self._taps = []
        self._teacher_taps = []
        self.cached_teacher = None

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's logits for ``x``: cached when the trainer holds them, else computed now."""
        return self.from_teacher(x)["logits"]

    def teacher_target_names(self) -> list[str]:
        """Names of what this method takes from the teacher per image: ``logits`` and ``feature:<layer>`` for
        every teacher layer it tapped. Override together with :meth:`teacher_targets` to add more."""
        return ["logits"] + [f"feature:{n}" for t in self._teacher_taps for n in t.names]

    def teacher_targets(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Compute :meth:`teacher_target_names` for ``x`` with the frozen teacher (first dimension: the images).

        What is returned here must depend only on the teacher and ``x``: the trainer may
        compute it once per training set and reuse it (:mod:`kdbench.distill.teacher_cache`).
        """
        with torch.no_grad():
            out = {"logits": self.teacher(x)}
        for t in self._teacher_taps:
            out.update({f"feature:{n}": t[n] for n in t.names})
        return out

    def from_teacher(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """This batch's teacher outputs: the trainer's cached rows when it set them, else :meth:`teacher_targets`."""
        if self.cached_teacher is not None:
            return self.cached_teacher
        return self.teacher_targets(x)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def deployable(self) -> nn.Module:
        """The model that is evaluated and shipped (the student, plus any parts it needs)."""
        return self.student

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


def resolve_options(method: str, defaults: dict[str, Any], given: dict[str, Any],
                    presets: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Merge user options into the defaults, coercing to each default's type.

    With ``preset=<name>`` among the options, that preset's values replace the defaults
    first; options given explicitly still win.
    """
    presets = presets or {}
    given = dict(given)
    preset = given.pop("preset", None)
    if preset is not None:
        if preset not in presets:
            known = ", ".join(sorted(presets)) or "none"
            raise ConfigError(f"method {method} has no preset {preset!r} (presets: {known})")
        given = {**presets[preset], **given}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
        raise ConfigError(f"method {method} has no option {unknown[0]!r} (options: {known})")
    out = dict(defaults)
    for key, value in given.items():
        out[key] = coerce(method, key, value, defaults[key])
    return out


def require(method: str, ok: bool, message: str) -> None:
    """One line for an option outside its domain: ``require("hinton", T > 0, "T must be > 0")``."""
    if not ok:
        raise ConfigError(f"{method}: {message}")


def coerce(method: str, key: str, value: Any, default: Any) -> Any:
    want = type(default)
    if isinstance(value, str) and want is not str:
        value = parse_option_value(value)
    try:
        if want is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if want in (int, float) and isinstance(value, bool):
            raise TypeError
        if want is int and isinstance(value, float) and not value.is_integer():
            raise TypeError
        result = want(value) if default is not None else value
        if isinstance(result, float) and not math.isfinite(result):
            raise ValueError  # T=inf or alpha=nan silently turns a loss term into nonsense
        return result
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"option {method}.{key}={value!r} is not a valid {want.__name__} "
                          f"(default {default!r})") from None


def parse_option_value(text: str) -> Any:
    """``"2"`` -> 2, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()
