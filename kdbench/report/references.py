"""Published reference numbers for the MedMNIST sets, printed beside kdbench's own teachers.

A teacher is only worth distilling if it is at least as good as the field's baseline for
the same data. Both references train ResNet-18 end to end on the 28 x 28 images and report
test accuracy and AUC (the MedMNIST evaluator's AUC: one-vs-rest macro for many classes):

- MedMNIST v2: Yang et al., Scientific Data 10:41 (2023), Table 3, "ResNet-18 (28)".
- MedMNIST+: Doerrich et al., Scientific Reports (2025), ResNet-18 trained end to end at
  28 px.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    source: str
    accuracy: float
    auc: float


#: MedMNIST flag -> (MedMNIST v2, MedMNIST+), both ResNet-18 at 28 px.
REFERENCES: dict[str, tuple[Reference, Reference]] = {
    "breastmnist": (Reference("MedMNIST v2", 0.863, 0.901), Reference("MedMNIST+", 0.840, 0.876)),
    "pneumoniamnist": (Reference("MedMNIST v2", 0.854, 0.944), Reference("MedMNIST+", 0.831, 0.950)),
    "bloodmnist": (Reference("MedMNIST v2", 0.958, 0.998), Reference("MedMNIST+", 0.919, 0.992)),
}


def references_for(dataset: str) -> tuple[Reference, ...]:
    """The references of a dataset spec such as ``medmnist:breastmnist`` (none for other datasets)."""
    kind, _, flag = str(dataset).partition(":")
    return REFERENCES.get(flag, ()) if kind == "medmnist" else ()


def reference_note(datasets) -> str:
    """``ResNet-18 at 28 px, test accuracy / AUC: breastmnist MedMNIST v2 0.863 / 0.901, MedMNIST+ 0.840 / 0.876.``"""
    parts = []
    for d in sorted(set(datasets)):
        refs = references_for(d)
        if refs:
            parts.append(f"{d.partition(':')[2]} " + ", ".join(f"{r.source} {r.accuracy:.3f} / {r.auc:.3f}"
                                                               for r in refs))
    if not parts:
        return ""
    return f"Published ResNet-18 baselines at 28 px, test accuracy / AUC, to judge the teachers by: {'; '.join(parts)}."
