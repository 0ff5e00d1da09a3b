"""Built-in KD methods."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..methods.at import AttentionTransfer
from ..methods.dkd import DKD
from ..methods.e2kd import E2KD
from ..methods.fitnets import FitNets
from ..methods.hinton import Hinton
from ..methods.medtex import MedTex
from ..methods.scratch import Scratch


@hookimpl
def register_methods(register):
    for cls in (Scratch, Hinton, FitNets, AttentionTransfer, DKD, E2KD, MedTex):
        register(cls.method_name, cls)
