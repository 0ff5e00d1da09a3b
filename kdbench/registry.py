"""Named component registries, filled by the plugin hooks.

A registry maps a name to a :class:`Component` and knows who provided it, so that a
duplicate name can name both providers and an unknown name can list the choices and
suggest the closest one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from kdbench.errors import DuplicateNameError, UnknownNameError

KINDS = ("datasets", "models", "methods", "explainers", "metrics")


@dataclass(frozen=True)
class Component:
    """One registered thing: its name, the object, a help line and its provider."""

    kind: str
    name: str
    obj: Any
    help: str = ""
    provider: str = ""
    meta: dict = field(default_factory=dict)


class Registry:
    """Components of one kind, keyed by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Component] = {}

    def add(self, name: str, obj: Any, *, provider: str, help: str = "", **meta) -> None:
        if not isinstance(name, str) or not name:
            raise DuplicateNameError(f"{provider} registered a {self.kind[:-1]} with an invalid name {name!r}")
        if name in self._items:
            first = self._items[name].provider
            raise DuplicateNameError(
                f"{self.kind[:-1]} name {name!r} is registered twice: by {first} and by {provider}; "
                f"uninstall one of them or rename the component"
            )
        if not help:
            help = _first_doc_line(obj)
        self._items[name] = Component(self.kind, name, obj, help, provider, dict(meta))

    def get(self, name: str) -> Component:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(unknown_message(self.kind[:-1], name, self.names())) from None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self):
        return iter(self._items[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._items)


def unknown_message(what: str, name: str, choices: list[str]) -> str:
    """``unknown method 'hintn'; did you mean 'hinton'? available: ...``"""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} (available: {', '.join(choices) or 'none'})"


def _first_doc_line(obj: Any) -> str:
    """The help line of a component registered without one: its description or its own docstring.

    An instance (an ``XaiMetric``) would otherwise show its class's docstring, the same line
    for every metric a plugin registers.
    """
    if not isinstance(obj, type) and callable(getattr(obj, "describe", None)):
        return str(obj.describe())
    doc = getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


Factory = Callable[..., Any]
