"""Teacher reuse: 3 methods x 2 students with one teacher, trained once, vs retrained per job.

kdbench trains the teacher once per (dataset, teacher, seed), caches it, and evaluates
it on the test split once. The naive baseline runs each job on its own with an empty
artifact cache, so every job retrains the teacher, as a hand-written script per
experiment would. Both run in this process, one after the other.

    python benchmarks/perf/teacher_reuse.py [--write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import machine, synthetic_bench, write_section

from kdbench.plugins import load_plugins
from kdbench.run.runner import Runner
from kdbench.run.store import ArtifactStore

SETTINGS = {"teachers": ["resnet18"], "students": ["tinycnn", "smallcnn"], "methods": ["hinton", "fitnets", "at"],
            "epochs": 2, "teacher_epochs": 4, "baseline": False}


def bench(**override):
    return synthetic_bench(1000, **{**SETTINGS, **override})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    plugins = load_plugins()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        summary = Runner(bench(), plugins, tmp / "kdbench", store=ArtifactStore(tmp / "cache")).run()
        ours = time.perf_counter() - start
        jobs = [r for r in summary.rows if r["method"] != "teacher"]
        start = time.perf_counter()
        naive_teachers = 0
        for i, r in enumerate(jobs):
            one = bench(students=[r["student"]], methods=[r["method"]])
            s = Runner(one, plugins, tmp / f"naive{i}", store=ArtifactStore(tmp / f"cache{i}")).run()
            naive_teachers += s.teachers_trained
        naive = time.perf_counter() - start
    table = (f"| run | teachers trained | wall time (s) |\n|---|---|---|\n"
             f"| naive: teacher retrained per job | {naive_teachers} | {naive:.1f} |\n"
             f"| kdbench: teacher trained once, cached | {summary.teachers_trained} | {ours:.1f} |\n\n"
             f"**naive / kdbench = {naive / ours:.2f}x** for {len(jobs)} student jobs")
    print(table)
    if args.write:
        write_section("teacher-reuse", f"## Teacher reuse\n\n3 methods x 2 students (tinycnn, smallcnn), resnet18 "
                                       f"teacher (4 epochs), synthetic 1000 training images. `python "
                                       f"benchmarks/perf/teacher_reuse.py --write`. {machine()}.\n\n{table}")


if __name__ == "__main__":
    main()
