"""The plan: every job of a benchmark, one per dataset/teacher/student/method/seed/fraction.

Each job carries a ``config_hash`` of everything that determines its result, so a re-run
recognises finished jobs and a merge of result sets can tell when two rows of the same
job were produced under different settings.

Where files live is not part of that identity: the data root is left out, the data
count by a fingerprint of what was loaded and a teacher checkpoint by its content. The same benchmark run from another checkout, or with
the data moved, finds its published rows and cached artifacts instead of redoing them.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from functools import lru_cache

from kdbench import __version__
from kdbench.config.benchmark import Benchmark
from kdbench.config.identity import (
    JOB_CODE_VERSION,
    TRAINING_CODE_VERSION,
    content_hash,
    file_sha256,
)


@dataclass(frozen=True)
class Job:
    dataset: str
    teacher: str
    student: str
    method: str
    seed: int
    fraction: float
    options: dict = field(default_factory=dict, hash=False, compare=False)
    config_hash: str = ""

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.teacher}->{self.student} {self.method} seed={self.seed} frac={self.fraction:g}"


def dataset_name(spec: str) -> str:
    """``medmnist:pneumoniamnist`` -> ``medmnist``."""
    return spec.split(":", 1)[0]


@lru_cache(maxsize=None)
def _checkpoint_identity(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def checkpoint_identity(path: str) -> str:
    """A teacher checkpoint's SHA-256 (its content, not its path); the path if it cannot be read."""
    if not path:
        return path
    try:
        st = os.stat(path)
        return _checkpoint_identity(os.path.abspath(path), st.st_size, st.st_mtime_ns)
    except OSError:
        return path


def teacher_settings(bench: Benchmark, dataset: str, teacher: str, seed: int, data: str = "") -> dict:
    """What determines a teacher; ``data`` is the loaded dataset's fingerprint (its content, not its path).

    A non-default ``teacher_selection`` is part of it; the default is left out, so teachers
    stored before the option existed keep their keys.
    """
    settings = {
        "dataset": dataset, "data": data, "dataset_options": bench.dataset_options.get(dataset_name(dataset), {}),
        "teacher": teacher, "seed": seed, "epochs": bench.teacher_epochs, "batch_size": bench.batch_size,
        "lr": bench.lr, "checkpoint": checkpoint_identity(bench.teacher_checkpoint),
        "pretrained": bench.teacher_pretrained, "augment": bench.augment or bench.teacher_augment,
        "code": TRAINING_CODE_VERSION,
    }
    if bench.teacher_selection != "accuracy":
        settings["selection"] = bench.teacher_selection
    return settings


def make_plan(bench: Benchmark, fingerprints: dict[str, str] | None = None,
              method_versions: dict[str, str | None] | None = None) -> list[Job]:
    """Every job with its config hash.

    ``fingerprints`` maps each dataset spec to the loaded data's fingerprint;
    ``method_versions`` each method to its ``code_version`` (:func:`method_code_versions`): a
    method with one gets it in its settings, so changing it re-runs only that method's jobs,
    and a method without one keeps the hashes it always had.
    """
    fingerprints, method_versions = fingerprints or {}, method_versions or {}
    jobs = []
    for dataset, teacher, student, method, seed, fraction in itertools.product(
        bench.datasets, bench.teachers, bench.students, bench.all_methods(), bench.seeds, bench.fractions
    ):
        options = dict(bench.method_options.get(method, {}))
        settings = {
            "teacher": teacher_settings(bench, dataset, teacher, seed, fingerprints.get(dataset, "")), "student": student, "method": method,
            "options": options, "fraction": fraction, "epochs": bench.epochs, "xai_samples": bench.xai_samples,
            "explainers": sorted(bench.explainers), "xai_profile": bench.xai_profile, "augment": bench.augment,
            "batch_size": bench.batch_size, "lr": bench.lr, "amp": bench.amp, "kdbench": __version__,
            "code": JOB_CODE_VERSION,
        }
        if method_versions.get(method):
            settings["method_code"] = method_versions[method]
        jobs.append(Job(dataset, teacher, student, method, seed, float(fraction), options, content_hash(settings)))
    return jobs


def method_code_versions(plugins) -> dict[str, str | None]:
    """Each registered method's ``code_version`` (``None`` where it declares none)."""
    return {name: getattr(plugins.methods.get(name).obj, "code_version", None) for name in plugins.methods.names()}
