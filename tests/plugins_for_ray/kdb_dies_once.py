"""A test plugin: a method whose worker process dies hard on its first attempt.

The marker file (method option) records the first attempt, so Ray's retry succeeds.
"""

import os

import kdbench
from kdbench.distill.methods.hinton import Hinton


class DiesOnce(Hinton):
    """Hinton KD whose process exits on the first attempt (simulates a killed worker)."""

    defaults = {**Hinton.defaults, "marker": ""}

    def forward(self, x, y):
        marker = self.opts["marker"]
        if marker and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return super().forward(x, y)


@kdbench.hookimpl
def register_methods(register):
    register("diesonce", DiesOnce)
