"""Scaling: wall time of one benchmark with the local executor and with Ray on this machine.

8 student jobs (2 students x 4 methods) share one teacher. Local runs them one after the
other, each using every core through torch's threads; Ray runs one job per core. The
teacher is trained once per run (fresh caches), so it is part of both timings.

    python benchmarks/perf/ray_scaling.py [--write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray
from common import machine, synthetic_bench, write_section

from kdbench.plugins import load_plugins
from kdbench.run.runner import Runner
from kdbench.run.store import ArtifactStore


def bench():
    return synthetic_bench(1500, teachers=["tinycnn"], students=["smallcnn", "tinycnn"],
                           methods=["hinton", "fitnets", "at"], epochs=3, teacher_epochs=3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    plugins = load_plugins()
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ray.init(include_dashboard=False, log_to_driver=False)
        ray.get(ray.remote(lambda: None).remote())  # start-up is not part of the measurement
        for executor in ("local", "ray"):
            start = time.perf_counter()
            summary = Runner(bench(), plugins, tmp / executor, store=ArtifactStore(tmp / f"c-{executor}"),
                             executor=executor).run()
            times[executor] = time.perf_counter() - start
            assert summary.failed == 0
        ray.shutdown()
    jobs = len(summary.rows) - 1
    table = (f"| executor | wall time (s) |\n|---|---|\n| local (one job at a time, 2 threads) | "
             f"{times['local']:.1f} |\n| ray (one job per core, 1 thread each) | {times['ray']:.1f} |\n\n"
             f"**local / ray = {times['local'] / times['ray']:.2f}x** for {jobs} jobs (teacher included)")
    print(table)
    if args.write:
        write_section("ray-scaling", f"## Local vs Ray\n\n`python benchmarks/perf/ray_scaling.py --write`. "
                                     f"No GPU was available to this session, so CPU vs GPU throughput is not "
                                     f"measured here. {machine()}.\n\n{table}")


if __name__ == "__main__":
    main()
