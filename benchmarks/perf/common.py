"""Shared helpers of the performance benchmarks: machine facts and RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "RESULTS.md"


def machine() -> str:
    import torch

    import kdbench

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # the vector ISA torch dispatches to: oneDNN's kernels (and so every CPU timing) differ between
    # AVX2 and AVX-512 machines that report the same model name
    isa = torch.backends.cpu.get_cpu_capability()
    return (f"{os.cpu_count()} CPU cores ({cpu}, {isa}), torch {torch.__version__} with {torch.get_num_threads()} "
            f"threads, kdbench {kdbench.__version__}, Python {platform.python_version()}, {date.today().isoformat()}")


def timed(fn, repeats: int, warmup: int = 3) -> float:
    """Milliseconds per call of ``fn`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def ratio_cells(a: list[float], b: list[float]) -> str:
    """``median a | median b | **median a/b**x (min-max)``: table cells of a side-by-side timing."""
    ratios = [x / y for x, y in zip(a, b)]
    return (f"{statistics.median(a):.1f} | {statistics.median(b):.1f} | "
            f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f})")


def write_section(name: str, markdown: str) -> None:
    """Replace (or add) the section between ``<!-- name -->`` markers in RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else "# kdbench performance results\n"
    block = f"<!-- {name} -->\n{markdown.strip()}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def synthetic_bench(n_train: int, n_val: int = 200, n_test: int = 200, **settings):
    """A benchmark on the synthetic dataset with the given settings."""
    from kdbench.config.benchmark import Benchmark, apply

    bench = apply(Benchmark(), settings)
    bench.dataset_options["synthetic"] = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
    return bench
