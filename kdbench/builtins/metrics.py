"""Built-in explanation metrics (Quantus), registered like any plugin's."""

from __future__ import annotations

from kdbench.explain.metrics import DEFAULT_METRICS, FULL_METRICS
from kdbench.hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    for metric in DEFAULT_METRICS + FULL_METRICS:
        register(metric.name, metric, help=f"Quantus {metric.describe()}; profile {metric.profile}")
