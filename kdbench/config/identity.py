"""What identifies an artifact or a job: stable content hashes and code versions.

A job's ``config_hash`` and a teacher's artifact key are :func:`content_hash` of the
settings that determine them; a checkpoint file counts by :func:`file_sha256`. The
versions below are part of those settings, so results computed by older code are never
mistaken for current ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

#: Bump when training code changes what a cached teacher would contain.
TRAINING_CODE_VERSION = "2"  # "2": channels-last for depthwise models on CPU (rounding differs from "1")

#: Bump when the code changes what a student job's rows would contain. "2": the method
#: fidelity fixes (e2KD, MED-TEX, FitNets, DKD, AT) and the explanation-metric fixes, so
#: rows published before them are re-computed by a re-run instead of skipped as done.
JOB_CODE_VERSION = "3"  # "3": channels-last for depthwise students on CPU, teacher-output cache, settings in rows


def content_hash(payload: dict, length: int = 16) -> str:
    """Stable hash of a JSON-able dict (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
