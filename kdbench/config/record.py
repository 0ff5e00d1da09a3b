"""What a run records about its own settings: in every row, in the footnotes and as a benchmark file.

A number without the settings that produced it cannot be reproduced, and a table that
says "all methods at their defaults" after a run with ``--epochs 1`` misleads. So every
row carries the training and scoring settings of its run (:func:`row_settings`), the
tables list those that differ from kdbench's defaults (:func:`non_default_settings`), and
the resolved benchmark is saved as ``<out>/benchmark.toml`` (:func:`write_benchmark_toml`):
``kdbench run --config OUT/benchmark.toml`` plans the same jobs, with the same config
hashes, so it resumes (or reproduces) that run.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomli_w

from kdbench.config.benchmark import Benchmark

#: Settings that change what a job computes, recorded in each of its rows.
RECORDED = ("epochs", "teacher_epochs", "batch_size", "lr", "augment", "teacher_augment", "teacher_selection", "amp",
            "teacher_pretrained", "xai_samples", "xai_profile")

#: Settings recorded later than the others -> one recorded beside them all along: a row that has the
#: older one but not the newer predates it, so it ran with the newer setting's default.
RECORDED_LATER = {"teacher_selection": "teacher_epochs"}

#: Benchmark fields that are [datasets.*], [methods.*] and [plugins.*] tables in a benchmark file.
TABLES = {"dataset_options": "datasets", "method_options": "methods", "plugin_settings": "plugins"}


def row_settings(bench: Benchmark, dataset: str) -> dict[str, Any]:
    """The run's settings for a row of ``dataset``: the recorded fields plus that dataset's options."""
    name = dataset.split(":", 1)[0]
    return {**{k: getattr(bench, k) for k in RECORDED},
            "dataset_options": dict(bench.dataset_options.get(name, {}))}


def non_default_settings(rows: list[dict]) -> list[str]:
    """``["epochs=1", "lr=0.01", "synthetic: n_train=96"]``: what these rows ran with that is not the default.

    Epochs are read from student rows (a teacher row's ``epochs`` are its teacher epochs).
    Rows written before settings were recorded simply contribute nothing.
    """
    defaults = Benchmark()
    out: list[str] = []
    students = [r for r in rows if r.get("method") != "teacher" and r.get("kind", "predictive") == "predictive"]
    for key in RECORDED:
        source = students if key == "epochs" else rows
        anchor, default_value = RECORDED_LATER.get(key), getattr(defaults, key)
        values = sorted({repr(r.get(key, default_value)) for r in source
                         if (key in r or anchor in r) and r.get(key, default_value) is not None})
        if values and values != [repr(default_value)]:
            out.append(f"{key}={'/'.join(v.strip(chr(39)) for v in values)}")
    options = sorted({f"{r['dataset'].split(':', 1)[0]}: " + ", ".join(f"{k}={v}" for k, v in
                                                                        sorted(r["dataset_options"].items()))
                      for r in rows if r.get("dataset_options")})
    return out + options


def benchmark_document(bench: Benchmark) -> dict[str, Any]:
    """The benchmark as the TOML document :func:`kdbench.config.benchmark.load_toml` reads back."""
    top: dict[str, Any] = {}
    for f in fields(Benchmark):
        if f.name in TABLES:
            continue
        value = getattr(bench, f.name)
        if f.name in ("data_root", "teacher_checkpoint") and value:
            value = os.path.abspath(os.path.expanduser(value))  # read back from anywhere
        top[f.name] = value
    doc: dict[str, Any] = {"benchmark": top}
    for field_name, table in TABLES.items():
        entries = {name: _tomlable(opts) for name, opts in getattr(bench, field_name).items()}
        if entries:
            doc[table] = entries
    return doc


def _tomlable(opts: dict) -> dict:
    """TOML has no null: an option left at None is simply not written (it is the default)."""
    return {k: v for k, v in opts.items() if v is not None}


def write_benchmark_toml(bench: Benchmark, out_dir: str | Path) -> Path:
    """Save the resolved benchmark as ``<out>/benchmark.toml`` (atomically)."""
    path = Path(out_dir) / "benchmark.toml"
    text = ("# The resolved benchmark of this run, written by kdbench. Re-run or resume it with:\n"
            f"#   kdbench run --config {path} --out {Path(out_dir)}\n\n" + tomli_w.dumps(benchmark_document(bench)))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
