"""Built-in KD methods."""

from __future__ import annotations

from kdbench.distill.methods.at import AttentionTransfer
from kdbench.distill.methods.dkd import DKD
from kdbench.distill.methods.e2kd import E2KD
from kdbench.distill.methods.fitnets import FitNets
from kdbench.distill.methods.hinton import Hinton
from kdbench.distill.methods.medtex import MedTex
from kdbench.distill.methods.scratch import Scratch
from kdbench.hookspecs import hookimpl


@hookimpl
def register_methods(register):
    for cls in (Scratch, Hinton, FitNets, AttentionTransfer, DKD, E2KD, MedTex):
        register(cls.method_name, cls)
