"""Terminal feedback: rich progress bars for jobs and epochs, or silence for scripts."""

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
    def job_done(self, status: str) -> None: ...
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
        self.progress.update(self.epochs, completed=done, info=f"val={record.get('val', float('nan')):.3f}")

    def job_done(self, status: str) -> None:
        if self.jobs is not None:
            self.progress.advance(self.jobs)

    def note(self, text: str) -> None:
        self.progress.console.print(text)
