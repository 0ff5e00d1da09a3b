"""Loading a dataset spec (``name`` or ``name:arg``) through the datasets registry."""

from __future__ import annotations

import inspect

from kdbench.config.benchmark import Benchmark
from kdbench.data.contract import DatasetBundle, check_labels
from kdbench.errors import ConfigError, DataError
from kdbench.plugins import Plugins


def load_dataset(spec: str, bench: Benchmark, plugins: Plugins) -> DatasetBundle:
    name, _, arg = spec.partition(":")
    factory = plugins.datasets.get(name).obj
    options = dict(bench.dataset_options.get(name, {}))
    params = inspect.signature(factory).parameters
    if bench.data_root and "root" in params:
        options.setdefault("root", bench.data_root)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = [p for p in params if p not in ("arg", "seed")]
        for key in options:
            if key not in params:
                raise ConfigError(f"dataset {name} has no option {key!r} (options: {', '.join(allowed)})")
    try:
        bundle = factory(arg or None, seed=0, **options)
    except MemoryError:
        raise DataError(f"dataset {spec} does not fit in memory with options {options or 'at their defaults'}; "
                        f"use a smaller image_size or fewer images") from None
    for split in ("train", "val", "test"):
        check_labels(bundle.info, getattr(bundle, split), split)
    return bundle
