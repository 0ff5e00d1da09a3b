"""Checks of a benchmark before any training: names, options, devices, models, fractions.

Everything a user can get wrong is caught here, before the first epoch, and reported as
one line (exit 2) instead of as a failed row for every job.
"""

from __future__ import annotations

import inspect
import math
import numbers
import types
import typing
from pathlib import Path

import timm
import torch

from kdbench.config.benchmark import Benchmark
from kdbench.config.plan import dataset_name
from kdbench.data.contract import DatasetBundle, fraction_indices
from kdbench.distill.methods.base import resolve_options
from kdbench.distill.models import create_model, load_checkpoint
from kdbench.errors import ConfigError, UnknownNameError
from kdbench.plugins import Plugins
from kdbench.registry import unknown_message


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {requested}: no CUDA device is available here; use --device cpu or auto")
    if requested not in ("cpu",) and not requested.startswith("cuda"):
        raise ConfigError(f"--device {requested!r} is not understood; use auto, cpu or cuda[:N]")
    return requested


def validate(bench: Benchmark, plugins: Plugins) -> None:
    """Check every name before any work starts, so a typo costs nothing."""
    if not bench.name.strip() or bench.name.strip(".") == "" or "/" in bench.name or "\\" in bench.name:
        # the default --out is results/<name>: "../../etc" would write outside results/
        raise ConfigError(f"benchmark name {bench.name!r} must be a plain folder name (no / or \\, not . or ..), "
                          f"e.g. name = \"my-benchmark\"")
    for spec in bench.datasets:
        plugins.datasets.get(dataset_name(spec))
    check_dataset_options(bench, plugins)
    for name in bench.teachers + bench.students:
        if name not in plugins.models and not timm.is_model(name):
            raise UnknownNameError(unknown_message("model", name, plugins.models.names()) +
                                   "; any timm model name also works")
    for name in bench.all_methods():
        plugins.methods.get(name)
    for name in bench.explainers:
        plugins.explainers.get(name)
    for name, opts in bench.method_options.items():
        cls = plugins.methods.get(name).obj
        cls.check_options(resolve_options(name, cls.defaults, opts, getattr(cls, "presets", {})))
    for f in bench.fractions:
        if not 0 < f <= 1:
            raise ConfigError(f"fraction {f} is outside (0, 1]; use e.g. --fractions 0.1,0.25,1.0")
    for flag, values, example in (("--datasets", bench.datasets, "synthetic"), ("--teachers", bench.teachers, "resnet18"),
                                  ("--students", bench.students, "mobilenetv3_small_050"),
                                  ("--seeds", bench.seeds, "0,1,2"), ("--fractions", bench.fractions, "1.0")):
        if not values:  # an empty list plans zero jobs and would "succeed" with nothing done
            raise ConfigError(f"{flag} is empty; give at least one, e.g. {flag} {example}")
    if not bench.all_methods():
        raise ConfigError("no methods to run (--methods is empty and --no-baseline drops scratch); "
                          "give at least one, e.g. --methods hinton")
    for seed in bench.seeds:
        if not 0 <= seed < 2**32:  # numpy and scikit-learn take seeds in [0, 2**32)
            raise ConfigError(f"seed {seed} is outside [0, 2**32); use e.g. --seeds 0,1,2")
    if bench.teacher_checkpoint and not Path(bench.teacher_checkpoint).expanduser().is_file():
        what = "is a folder, not a file" if Path(bench.teacher_checkpoint).expanduser().is_dir() else "does not exist"
        raise ConfigError(f"teacher checkpoint {bench.teacher_checkpoint} {what}")
    if bench.teacher_pretrained and bench.teacher_checkpoint:
        raise ConfigError("--teacher-pretrained and --teacher-checkpoint both say where the teacher's weights come "
                          "from; give one of them")
    if bench.epochs < 1 or bench.teacher_epochs < 1:
        raise ConfigError("epochs must be at least 1")
    if bench.batch_size < 1:
        raise ConfigError(f"--batch-size {bench.batch_size} must be at least 1")
    if not (math.isfinite(bench.lr) and bench.lr > 0):
        raise ConfigError(f"--lr {bench.lr} must be a positive finite number, e.g. 2e-3")
    if bench.xai_samples < 1:
        raise ConfigError(f"--xai-samples {bench.xai_samples} must be at least 1")
    if bench.amp and not resolve_device(bench.device).startswith("cuda"):
        # fit trains in float32 off CUDA (bfloat16 autocast slowed a resnet18 step on a CPU with AMX: 218 -> 290 ms);
        # run anyway, every row would say amp while nothing ran in mixed precision
        raise ConfigError("--amp is mixed precision on CUDA and this run is on the CPU, where it would change nothing "
                          "but the rows' amp field; drop --amp (amp = false in a benchmark file) or use --device cuda")
    for flag, values in (("--datasets", bench.datasets), ("--teachers", bench.teachers), ("--students", bench.students),
                         ("--methods", bench.methods), ("--explainers", bench.explainers), ("--seeds", bench.seeds),
                         ("--fractions", bench.fractions)):
        seen = [v for i, v in enumerate(values) if v in values[:i]]
        if seen:
            raise ConfigError(f"{flag} lists {seen[0]} twice; every job would run twice, list it once")


def preflight(bench: Benchmark, plugins: Plugins, datasets: dict[str, DatasetBundle]) -> None:
    """Try every model on every dataset once, and every fraction, before any training.

    Catches images too small for a model, a teacher checkpoint of another architecture or
    class count, and fractions that leave no image, as bad input (exit 2) rather than as
    a failed row for every job.
    """
    for spec, bundle in datasets.items():
        info = bundle.info
        for name in dict.fromkeys(bench.teachers + bench.students):
            # pretrained teachers are built as the run builds them: weights missing offline are bad input here
            model = create_model(name, plugins.models, num_classes=info.num_classes, in_chans=info.in_chans,
                                 image_size=info.image_size,
                                 pretrained=bench.teacher_pretrained and name in bench.teachers)
            try:
                with torch.no_grad():
                    out = model.eval()(bundle.test.x[:2])
            except Exception as exc:
                first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                raise ConfigError(f"model {name} cannot take the {info.image_size}x{info.image_size} images of "
                                  f"{spec} ({first}); use a larger image_size (e.g. --dataset-opt "
                                  f"{dataset_name(spec)}.image_size=64) or another model") from None
            if tuple(out.shape) != (min(2, len(bundle.test)), info.num_classes):
                raise ConfigError(f"model {name} returns shape {tuple(out.shape)} on {spec}, "
                                  f"expected (batch, {info.num_classes})")
            if bench.teacher_checkpoint and name in bench.teachers:
                load_checkpoint(model, Path(bench.teacher_checkpoint).expanduser())
        for f in bench.fractions:
            fraction_indices(bundle.train.y, info.task, f, 0)


def check_dataset_options(bench: Benchmark, plugins: Plugins) -> None:
    """Every dataset option names a registered dataset, one of its options, and a value of its type.

    Options are given per dataset name (``--dataset-opt medmnist.size=64``, ``[datasets.medmnist]``),
    never per spec. Options for a registered dataset that this run does not load are checked
    the same way, then unused: one set of flags may serve runs on several datasets.
    """
    for name, opts in bench.dataset_options.items():
        first = next(iter(opts), "OPTION")
        if ":" in name:
            base = dataset_name(name)
            raise ConfigError(f"dataset option {name}.{first}: options are set per dataset name, not per spec; "
                              f"write --dataset-opt {base}.{first}=VALUE (or [datasets.{base}] in a benchmark file)")
        if name not in plugins.datasets:
            in_run = ", ".join(bench.datasets) or "none"
            raise ConfigError(f"dataset option {name}.{first}: "
                              f"{unknown_message('dataset', name, plugins.datasets.names())}; datasets in this run: "
                              f"{in_run}")
        factory = plugins.datasets.get(name).obj
        params = inspect.signature(factory).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        allowed = [p for p in params if p not in ("arg", "seed") and params[p].kind is not params[p].VAR_KEYWORD]
        hints = _type_hints(factory)
        for key, value in opts.items():
            if key in ("arg", "seed") or (key not in params and not takes_any):
                raise ConfigError(f"dataset {name} has no option {key!r} (options: {', '.join(allowed)})")
            if key not in params:
                continue
            param = params[key]
            expected = hints.get(key, _default_type(param.default))
            what = _describe_mismatch(value, expected)
            if what:
                example = f"{param.default!r}" if param.default not in (inspect.Parameter.empty, None, "") else what[1]
                raise ConfigError(f"dataset option {name}.{key}={value!r} must be {what[0]}, "
                                  f"e.g. --dataset-opt {name}.{key}={example}")


def _type_hints(factory) -> dict:
    try:
        return typing.get_type_hints(factory)
    except Exception:  # a plugin's annotations that do not resolve: fall back to the defaults' types
        return {}


def _default_type(default):
    """The type an unannotated option is held to: its default's (an int default also takes 0.5)."""
    if default is inspect.Parameter.empty or default is None:
        return None
    kind = type(default)
    return float if kind is int else kind


#: expected type -> (words, example value)
_KINDS = {bool: ("true or false", "true"), int: ("a whole number", "64"), float: ("a number", "0.5"),
          str: ("text", "NAME"), list: ("a list", "['a','b']"), tuple: ("a list", "['a','b']"),
          dict: ("a table", "{'a':1}"), Path: ("a path", "/path"), type(None): ("None", "None")}


def _fits(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind in (list, tuple):
        return isinstance(value, (list, tuple))
    if kind is Path:
        return isinstance(value, (str, Path))
    if kind is type(None):
        return value is None
    return isinstance(value, kind)


def _describe_mismatch(value, expected) -> tuple[str, str] | None:
    """None when ``value`` fits the annotation ``expected``, else (what it must be, an example)."""
    if expected is None or expected is typing.Any:
        return None
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        kinds = typing.get_args(expected)
    else:
        kinds = (expected,)
    kinds = tuple(typing.get_origin(k) or k for k in kinds)
    if any(k not in _KINDS for k in kinds):
        return None  # a type this check does not know: the factory checks it
    if any(_fits(value, k) for k in kinds):
        return None
    words = " or ".join(dict.fromkeys(_KINDS[k][0] for k in kinds))
    example = next(_KINDS[k][1] for k in kinds if k is not type(None))
    return words, example
