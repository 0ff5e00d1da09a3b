"""The frozen teacher's outputs, computed once per training set instead of once per step.

A KD step spends most of its time re-deriving numbers that never change: at 28 px a
resnet18 teacher costs about 40 times the default student's forward. When training inputs
are deterministic (no augmentation), what a method takes from its teacher for an image
(its logits, the stage outputs it was tapped at, e2KD's teacher Grad-CAM) is the same in
every epoch and for every method that trains on the same images with the same teacher.
:class:`TeacherOutputCache` keeps those per-image tensors, keyed by (teacher, training set,
output name), so hinton, dkd, fitnets, ... of one seed and fraction share them and each
epoch after the first costs only the student.

Rules that keep the numbers unchanged:

- Only methods that declare ``teacher_cacheable = True`` read from the cache: they take
  the teacher's outputs through :meth:`Distiller.from_teacher`, never from a hook filled by
  a forward pass. A plugin that reads its own hooks keeps computing its teacher live.
- The outputs are computed by the method's own :meth:`Distiller.teacher_targets` in eval
  mode, in chunks of the training batch size, under the same autocast as training. On CPU
  a teacher's per-image output does not depend on which other images share its batch
  (tested), so the cached path gives bit-identical rows to the recomputing one.
- Memory is bounded (``KDBENCH_TEACHER_CACHE_MB``, default 1024; 0 turns the cache off).
  Older entries are evicted first; outputs that do not fit even then are not cached and
  that job recomputes its teacher on every step, as before: never dropped, never partial.
- With ``--augment`` every batch is new, so the teacher is recomputed on each one.
"""

from __future__ import annotations

import os
import weakref
from collections import OrderedDict

import torch

#: Default memory budget in MiB for cached teacher outputs (``KDBENCH_TEACHER_CACHE_MB`` overrides).
DEFAULT_BUDGET_MB = 1024


def budget_bytes() -> int:
    """The cache's memory budget from ``KDBENCH_TEACHER_CACHE_MB`` (0 disables it)."""
    raw = os.environ.get("KDBENCH_TEACHER_CACHE_MB", "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_BUDGET_MB
    except ValueError:
        mb = DEFAULT_BUDGET_MB
    return max(0, int(mb * 2**20))


class TeacherOutputCache:
    """Per-image teacher outputs, keyed by (teacher, training-set id, output name), within a memory budget."""

    def __init__(self, budget: int | None = None):
        self.budget = budget_bytes() if budget is None else budget
        self._entries: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.used = 0
        self.computed = 0  # images x outputs computed; a test and the benchmark read it
        self.refused: list[str] = []
        self._watched: set[int] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def outputs(self, method, data_id: str, x: torch.Tensor, batch_size: int, autocast=None) -> dict | None:
        """Every output ``method`` needs for the images ``x`` (aligned with its rows), or None to recompute live.

        Missing outputs are computed now with ``method.teacher_targets`` on chunks of
        ``batch_size``; ``autocast`` is a context factory matching the training step's.
        """
        teacher = method.teacher
        if teacher is None or not getattr(method, "teacher_cacheable", False) or self.budget <= 0:
            return None
        names = tuple(method.teacher_target_names())
        keys = {n: (id(teacher), data_id, n) for n in names}
        missing = [n for n in names if keys[n] not in self._entries]
        if missing:
            probe = self._targets(method, x[:2], autocast)
            need = sum(probe[n][:1].numel() * probe[n].element_size() * len(x) for n in missing)
            if not self._make_room(need, keep=set(keys.values())):
                self.refused.append(f"{type(method).__name__}: {need / 2**20:.0f} MiB of teacher outputs over the "
                                    f"{self.budget / 2**20:.0f} MiB budget (KDBENCH_TEACHER_CACHE_MB); recomputed "
                                    f"on every step")
                return None
            chunks: dict[str, list[torch.Tensor]] = {n: [] for n in missing}
            for start in range(0, len(x), batch_size):
                out = self._targets(method, x[start:start + batch_size], autocast)
                for n in missing:
                    chunks[n].append(out[n].detach())
            for n in missing:
                value = torch.cat(chunks[n])
                self._entries[keys[n]] = value
                self.used += _nbytes(value)
                self.computed += len(x)
            if id(teacher) not in self._watched:  # a teacher's outputs go when the teacher goes
                self._watched.add(id(teacher))
                weakref.finalize(teacher, self._drop_teacher, id(teacher))
        for k in keys.values():
            self._entries.move_to_end(k)
        return {n: self._entries[keys[n]] for n in names}

    @staticmethod
    def _targets(method, x: torch.Tensor, autocast) -> dict[str, torch.Tensor]:
        if autocast is None:
            return method.teacher_targets(x)
        with autocast():
            return method.teacher_targets(x)

    def _make_room(self, need: int, keep: set) -> bool:
        if need > self.budget:
            return False
        for key in list(self._entries):
            if self.used + need <= self.budget:
                break
            if key in keep:
                continue
            value = self._entries.pop(key)
            self.used -= _nbytes(value)
        return self.used + need <= self.budget

    def _drop_teacher(self, teacher_id: int) -> None:
        self._watched.discard(teacher_id)
        for key in [k for k in self._entries if k[0] == teacher_id]:
            value = self._entries.pop(key)
            self.used -= _nbytes(value)


def batch_of(outputs: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The rows ``idx`` of every cached output: one batch's teacher outputs, as :meth:`Distiller.from_teacher` gives them."""
    return {n: v[idx] for n, v in outputs.items()}


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()
