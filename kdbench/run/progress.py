"""Feedback while a run works: progress bars on a terminal, one plain line per job elsewhere, or silence.

- :class:`RichReporter` (stdout is a terminal): a bar for the run's jobs and one for the
  epochs of the current training, on stderr.
- :class:`PlainReporter` (stdout is a file, a pipe, a CI log, nohup): no bars, no colour,
  no width limit; one line per finished job with its status, key metrics and time, so a
  log shows progress as it happens and reads well afterwards.
- :class:`Reporter` (``--quiet``): nothing.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)


class Reporter:
    """Quiet reporter: says nothing (``--quiet``). Subclasses show progress."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start(self, total_jobs: int) -> None: ...
    def job(self, label: str, epochs: int) -> None: ...
    def epoch(self, done: int, record: dict) -> None: ...
    def job_done(self, rows: list[dict]) -> None: ...
    def rows_written(self, rows: list[dict]) -> None: ...
    def note(self, text: str) -> None: ...


class RichReporter(Reporter):
    """One bar for the jobs of the run, one for the epochs of the current training."""

    def __enter__(self):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"), console=self.console, transient=False,
        )
        self.progress.__enter__()
        self.jobs = None
        self.epochs = self.progress.add_task("epochs", total=1, info="", visible=False)
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)
        return False

    def start(self, total_jobs: int) -> None:
        self.jobs = self.progress.add_task("jobs", total=total_jobs, info="")

    def job(self, label: str, epochs: int) -> None:
        self.progress.reset(self.epochs, total=max(epochs, 1), description=f"  {label}", visible=True, info="")

    def epoch(self, done: int, record: dict) -> None:
        val, rule = record.get("val", float("nan")), record.get("selection", "accuracy")
        label = {"accuracy": "val", "loss": "val loss"}.get(rule, f"val {rule}")
        value = -val if rule == "loss" else val  # the loss rule's score is minus the loss
        self.progress.update(self.epochs, completed=done, info=f"{label}={value:.3f}")

    def job_done(self, rows: list[dict]) -> None:
        if self.jobs is not None:
            self.progress.advance(self.jobs)

    def note(self, text: str) -> None:
        self.progress.console.print(text)


#: Metrics shown in a job's line, when the row has them.
LINE_METRICS = ("accuracy", "auc", "f1")


def job_line(rows: list[dict]) -> str:
    """``synthetic resnet18->mobilenetv3_small_050 hinton seed=0 frac=1: ok accuracy 0.772 auc 0.912 f1 0.770, 3/3 explainers scored, 14.0 s``.

    The explainer count leaves out explainers that do not apply to the model, so anything
    short of n/n means an explainer failed.
    """
    if not rows:
        return "no rows"
    first = rows[0]
    what = (f"{first.get('dataset')} {first.get('teacher')}->{first.get('student')} {first.get('method')} "
            f"seed={first.get('seed')} frac={first.get('fraction', 1.0):g}")
    if first.get("status") != "ok":
        return f"{what}: {first.get('status')}: {first.get('error')}"
    metrics = " ".join(f"{m} {first[m]:.3f}" for m in LINE_METRICS if isinstance(first.get(m), (int, float)))
    xai = [r for r in rows[1:] if r.get("kind") == "explanation"]
    # An explainer that does not apply to this model (medtex-mask on a plain student) is not a
    # shortfall: counting it made every plain student read "3/4 explainers scored".
    applicable = [r for r in xai if r.get("status") != "not_applicable"]
    ok = sum(r.get("status") == "ok" for r in applicable)
    seconds = (first.get("train_seconds") or 0.0) + sum((r.get("metric_seconds") or 0.0) for r in xai)
    explained = f", {ok}/{len(applicable)} explainers scored" if applicable else ""
    cached = " (cached teacher)" if first.get("teacher_cached") else ""
    return f"{what}: ok {metrics}{explained}, {seconds:.1f} s{cached}"


class PlainReporter(Reporter):
    """One plain line per finished job (and per teacher), for logs: no bars, no colour, no width limit."""

    def __init__(self, console: Console | None = None):
        super().__init__(console or Console(no_color=True, highlight=False, soft_wrap=True))
        self.total = 0
        self.done = 0

    def start(self, total_jobs: int) -> None:
        self.total = total_jobs
        self.console.print(f"{total_jobs} jobs to run", markup=False)

    def rows_written(self, rows: list[dict]) -> None:
        if rows and rows[0].get("method") == "teacher":
            self.console.print(f"teacher  {job_line(rows)}", markup=False)

    def job_done(self, rows: list[dict]) -> None:
        self.done += 1
        self.console.print(f"[{self.done}/{self.total}] {job_line(rows)}", markup=False)

    def note(self, text: str) -> None:
        if not text.startswith(" "):  # indented notes are details of a job, its line follows
            self.console.print(text, markup=False)
