"""Packaging that pyproject.toml alone cannot say: benchmarks/ ships inside the wheel.

The benchmark definitions live in ``benchmarks/*.toml`` at the top of the repository (next
to the performance scripts and ``reproduce.py``), and they are installed as the package
``kdbench.benchmarks``, so ``kdbench run --config synthetic-demo`` works outside a checkout.
Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["kdbench", "kdbench.*"]) + ["kdbench.benchmarks"],
    package_dir={"kdbench.benchmarks": "benchmarks"},
    package_data={"kdbench.benchmarks": ["*.toml"]},
    include_package_data=False,  # the sdist's other files (docs, perf scripts) stay out of the wheel
)
