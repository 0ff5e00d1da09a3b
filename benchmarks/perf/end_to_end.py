"""End to end: wall time and peak memory of the README's main command on a fresh cache.

Runs ``kdbench run --methods medtex,hinton,fitnets`` as a subprocess (a fresh artifact
cache, so the teacher is trained too; explanations are scored by default), then the same
with ``--explainers ''``, and reports the share of each run spent on explanations.

    python benchmarks/perf/end_to_end.py [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, write_section

COMMANDS = {
    "README main command (explanations scored by default)": ["--methods", "medtex,hinton,fitnets"],
    "the same without explanation scoring": ["--methods", "medtex,hinton,fitnets", "--explainers", ""],
}


#: Runs one command and prints the peak RSS of its children: each command measured on its own.
WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def run(args: list[str], tmp: Path, name: str) -> tuple[float, float, list[dict]]:
    env = dict(os.environ, KDBENCH_CACHE=str(tmp / f"cache-{name}"))
    out = tmp / f"out-{name}"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-m", "kdbench.cli", "run", *args,
                           "--out", str(out), "--quiet"], env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    return wall, peak_kib / 1024 / 1024, rows


def explanation_seconds(row: dict) -> float:
    """Attribution plus Quantus time of one explanation row (0 for other rows)."""
    return (row.get("metric_seconds") or 0) + (row.get("explain_ms_per_image") or 0) * (row.get("xai_samples") or 0) / 1000


def where_the_time_goes(rows: list[dict], wall: float) -> str:
    """Training and explanation seconds per job, and the rest of the wall time (start-up, evaluation, tables)."""
    lines = ["| job | training, s | explanations, s |", "|---|---|---|"]
    accounted = 0.0
    for method in dict.fromkeys(r["method"] for r in rows):
        train = sum(r.get("train_seconds") or 0 for r in rows if r["method"] == method)
        explain = sum(explanation_seconds(r) for r in rows if r["method"] == method)
        accounted += train + explain
        lines.append(f"| {method} | {train:.0f} | {explain:.0f} |")
    return "\n".join(lines) + (f"\n\nThe rest of the {wall:.0f} s (start-up, data, test evaluation, latency and "
                               f"FLOPs, tables): {wall - accounted:.0f} s.")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    lines = ["| command | wall time | peak memory (max RSS) | explanation metrics share |", "|---|---|---|---|"]
    breakdown = ""
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, cmd) in enumerate(COMMANDS.items()):
            wall, peak_gib, rows = run(cmd, Path(tmp), str(i))
            xai = sum(explanation_seconds(r) for r in rows)
            share = f"{xai / wall:.0%} ({xai:.0f} s)" if xai else "–"
            lines.append(f"| `kdbench run {shlex.join(cmd)}` | {wall / 60:.1f} min ({wall:.0f} s) | "
                         f"{peak_gib:.2f} GiB | {share} |")
            if i == 0:
                breakdown = where_the_time_goes(rows, wall)
    table = ("\n".join(lines) + "\n\nTargets for the main command, explanations included: under 3 minutes and 2 GiB."
             + "\n\nWhere the first command's time went, from its rows:\n\n" + breakdown)
    print(table)
    if args.write:
        write_section("end-to-end", f"## End to end\n\nFresh artifact cache (the teacher is trained in the run). "
                                    f"`python benchmarks/perf/end_to_end.py --write`. {machine()}.\n\n{table}")


if __name__ == "__main__":
    main()
