"""Benchmark definitions: a TOML file, overridden by CLI flags.

    [benchmark]
    name = "synthetic-demo"
    datasets = ["synthetic"]
    teachers = ["resnet18"]
    students = ["mobilenetv3_small_050", "smallcnn"]
    methods = ["hinton", "fitnets", "medtex"]
    seeds = [0, 1, 2]
    fractions = [0.25, 1.0]
    epochs = 8

    [datasets.synthetic]     # options passed to the dataset factory
    image_size = 32

    [methods.hinton]         # method hyper-parameters
    T = 2.0

    [plugins.mlflow]         # settings read by a plugin (here the MLflow reporter)
    tracking_uri = "file:./mlruns"
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from kdbench.distill.methods.base import parse_option_value
from kdbench.errors import ConfigError
from kdbench.evaluate.selection import SELECTION_RULES

#: Scored unless a run says otherwise (``--explainers ""`` turns scoring off): the question kdbench
#: answers is which small model can still be explained, so the main command must score explanations.
#: Grad-CAM and a gradient method, MED-TEX's learned mask (rows for other methods' students say
#: ``not_applicable``) and the ``random`` baseline, the chance level of every metric.
DEFAULT_EXPLAINERS = ("gradcam", "saliency", "medtex-mask", "random")


@dataclass
class Benchmark:
    name: str = "default"
    datasets: list[str] = field(default_factory=lambda: ["synthetic"])
    teachers: list[str] = field(default_factory=lambda: ["resnet18"])
    students: list[str] = field(default_factory=lambda: ["mobilenetv3_small_050"])
    methods: list[str] = field(default_factory=lambda: ["medtex", "hinton", "fitnets"])
    explainers: list[str] = field(default_factory=lambda: list(DEFAULT_EXPLAINERS))
    seeds: list[int] = field(default_factory=lambda: [0])
    fractions: list[float] = field(default_factory=lambda: [1.0])
    epochs: int = 8
    teacher_epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    device: str = "auto"
    baseline: bool = True
    teacher_checkpoint: str = ""
    teacher_pretrained: bool = False
    data_root: str = ""
    augment: bool = False
    # augment the teacher's training only: the students keep deterministic inputs, so the
    # teacher-output cache still serves them (a teacher trained on flips generalises better)
    teacher_augment: bool = False
    # the validation score that picks the teacher's kept epoch: accuracy (default), auc, or loss
    # (evaluate.selection; on small validation splits accuracy ties, benchmarks/teacher_selection.py)
    teacher_selection: str = "accuracy"
    amp: bool = False
    xai_samples: int = 64
    xai_profile: str = "default"
    featuremap_figures: bool = False
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def all_methods(self) -> list[str]:
        """The methods to run: the baseline ``scratch`` first unless turned off."""
        methods = list(dict.fromkeys(self.methods))
        if self.baseline and "scratch" not in methods:
            methods.insert(0, "scratch")
        return methods

    def to_dict(self) -> dict:
        return asdict(self)


_LIST_FIELDS = {"datasets": str, "teachers": str, "students": str, "methods": str, "explainers": str,
                "seeds": int, "fractions": float}
_TABLE_FIELDS = ("dataset_options", "method_options", "plugin_settings")  # [datasets.*], [methods.*], [plugins.*]
_SCALAR_FIELDS = {f.name: f.type for f in fields(Benchmark)
                  if f.name not in _LIST_FIELDS and f.name not in _TABLE_FIELDS}
#: The top level of a benchmark file: [benchmark] and one table per name in the others.
_TOP_LEVEL = ("benchmark", "datasets", "methods", "plugins")
_CHOICES = {"xai_profile": ("default", "full"), "teacher_selection": SELECTION_RULES}


def load_toml(path: str | Path) -> Benchmark:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"benchmark file {path} " + ("is a folder; give the .toml file in it" if path.is_dir()
                                                        else "does not exist"))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"benchmark file {path} is not UTF-8 text (byte {exc.start}); a benchmark file is "
                          f"TOML, e.g. benchmarks/synthetic-demo.toml") from None
    except OSError as exc:
        raise ConfigError(f"cannot read benchmark file {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"benchmark file {path}: TOML syntax error: {exc}") from None
    tables = "[benchmark], [datasets.<name>], [methods.<name>], [plugins.<name>]"
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        what = f"table [{unknown[0]}]" if isinstance(data[unknown[0]], dict) else f"key {unknown[0]!r}"
        raise ConfigError(f"benchmark file {path}: unknown top-level {what} (valid: {tables}; settings such as "
                          f"seeds go in [benchmark])")
    for key in _TOP_LEVEL:
        if not isinstance(data.get(key, {}), dict):
            example = "[benchmark]" if key == "benchmark" else f"[{key}.NAME]"
            raise ConfigError(f"benchmark file {path}: {key} must be a table, e.g. {example}, "
                              f"not {type(data[key]).__name__} {_short(data[key])}")
    bench = Benchmark(name=path.stem)
    apply(bench, data.get("benchmark", {}), where=str(path))
    for key in ("data_root", "teacher_checkpoint"):  # relative paths: relative to the benchmark file
        value = getattr(bench, key)
        if value and not Path(value).expanduser().is_absolute():
            setattr(bench, key, os.path.normpath(path.parent.absolute() / value))
    for key, target in (("datasets", "dataset_options"), ("methods", "method_options"),
                        ("plugins", "plugin_settings")):
        table = data.get(key, {})
        if not all(isinstance(v, dict) for v in table.values()):
            raise ConfigError(f"benchmark file {path}: [{key}] must hold one table per name, e.g. [{key}.NAME]")
        getattr(bench, target).update({k: dict(v) for k, v in table.items()})
    return bench


def apply(bench: Benchmark, values: dict[str, Any], where: str = "command line") -> Benchmark:
    """Set fields from a mapping, checking names and types."""
    for key, value in values.items():
        if key in _LIST_FIELDS:
            setattr(bench, key, _as_list(key, value, _LIST_FIELDS[key], where))
        elif key in _SCALAR_FIELDS:
            setattr(bench, key, _as_scalar(key, value, type(getattr(Benchmark(), key)), where))
            if key in _CHOICES and getattr(bench, key) not in _CHOICES[key]:
                raise ConfigError(f"{where}: {key} must be one of {', '.join(_CHOICES[key])}, got {_short(value)}")
        else:
            known = ", ".join(sorted(list(_LIST_FIELDS) + list(_SCALAR_FIELDS)))
            raise ConfigError(f"{where}: unknown benchmark setting {key!r} (settings: {known})")
    return bench


def _as_list(key, value, kind, where):
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {key} must be a list, e.g. {key} = [...], got {_short(value)}")
    try:
        return [_item(v, kind) for v in value]
    except (TypeError, ValueError, OverflowError):
        hint = {str: "names", int: "whole numbers", float: "numbers"}[kind]
        raise ConfigError(f"{where}: {key} must hold {kind.__name__} values ({hint}), got {_short(value)}") from None


def _item(v, kind):
    """One list element: names are text; numbers are numbers or their text (CLI), never true/false."""
    if kind is str:
        if not isinstance(v, str):
            raise TypeError
        return v
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise TypeError
    if kind is int and isinstance(v, float) and not v.is_integer():  # seeds = [1.5] is not seed 1
        raise ValueError
    return kind(v)


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _as_scalar(key, value, kind, where):
    if isinstance(value, str) and kind is not str:
        value = parse_option_value(value)
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be text, got {_short(value)}")
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false, got {_short(value)}")
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{where}: {key} must be a number, got {_short(value)}")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{where}: {key} must be a whole number, got {_short(value)}")
    try:
        return kind(value)
    except OverflowError:  # a 400-digit integer for a float setting
        raise ConfigError(f"{where}: {key} is out of range, got {_short(value)}") from None


def parse_assignments(items: list[str], flag: str) -> dict[str, dict[str, Any]]:
    """``["hinton.T=2", "hinton.alpha=0.5"]`` -> ``{"hinton": {"T": 2, "alpha": 0.5}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, dot, rest = item.partition(".")
        key, eq, value = rest.partition("=")
        if not (dot and eq and name and key):
            raise ConfigError(f"{flag} {item!r} is malformed; write NAME.OPTION=VALUE, e.g. {flag} hinton.T=2")
        out.setdefault(name, {})[key.strip()] = parse_option_value(value)
    return out
