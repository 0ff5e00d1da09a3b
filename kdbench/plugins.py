"""Plugin discovery: built-ins, installed distributions and local modules.

Built-in components live in :mod:`kdbench.builtins` and are registered through the same
hooks as third-party plugins (as pytest does with its own plugins). Installed packages
are found through the ``kdbench`` entry-point group; ``--plugin module.path`` loads a
local module. A plugin that fails to import is recorded as broken and the rest load.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
from dataclasses import dataclass, field
from functools import partial

import pluggy

from kdbench import __version__, hookspecs
from kdbench.errors import KdbenchError
from kdbench.registry import KINDS, Registry

ENTRY_POINT_GROUP = "kdbench"

BUILTIN_MODULES = (
    "kdbench.builtins.datasets",
    "kdbench.builtins.models",
    "kdbench.builtins.methods",
    "kdbench.builtins.explainers",
    "kdbench.builtins.metrics",
)


@dataclass
class PluginInfo:
    """Where a plugin came from, for `kdbench plugins` and error messages."""

    name: str
    source: str  # "builtin", "entry point", "--plugin"
    distribution: str = ""
    version: str = ""
    error: str = ""

    @property
    def label(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version}".strip()
        return self.name


@dataclass
class Plugins:
    """The loaded plugin manager and every registry it filled."""

    pm: pluggy.PluginManager
    registries: dict[str, Registry]
    infos: dict[str, PluginInfo] = field(default_factory=dict)

    def __getattr__(self, kind: str) -> Registry:
        registries = self.__dict__.get("registries", {})
        if kind in registries:
            return registries[kind]
        raise AttributeError(kind)

    @property
    def broken(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.error]

    def notify(self, hook: str, **kwargs) -> list[str]:
        """Call every implementation of an observer hook; return warnings instead of raising."""
        warnings = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:  # a reporter bug must never lose a result
                warnings.append(f"{hook} observer {impl.plugin_name} failed: {type(exc).__name__}: {exc}")
        return warnings

    def notify_result(self, row: dict) -> list[str]:
        return self.notify("on_result", row=dict(row))


def load_plugins(extra_modules: tuple[str, ...] | list[str] = (), *, entry_points: bool = True) -> Plugins:
    """Build a plugin manager, load every plugin and fill the registries."""
    pm = pluggy.PluginManager("kdbench")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}

    for modname in BUILTIN_MODULES:
        pm.register(importlib.import_module(modname), name=modname)
        infos[modname] = PluginInfo(modname, "builtin", "kdbench", _version("kdbench"))

    if entry_points:
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else ""
            info = PluginInfo(ep.name, "entry point", dist, ep.dist.version if ep.dist else "")
            infos[ep.name] = info
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # one broken plugin must not take the others down
                info.error = f"{type(exc).__name__}: {exc}"

    for modname in extra_modules:
        try:
            module = importlib.import_module(modname)
        except Exception as exc:
            raise KdbenchError(
                f"--plugin {modname}: cannot import it ({type(exc).__name__}: {exc}); "
                f"check the module path and that its folder is on PYTHONPATH"
            ) from None
        if pm.is_registered(module):
            continue
        pm.register(module, name=modname)
        infos[modname] = PluginInfo(modname, "--plugin")

    registries = {kind: Registry(kind) for kind in KINDS}
    for kind in KINDS:
        hook = getattr(pm.hook, f"register_{kind}")
        for impl in hook.get_hookimpls():  # registration order: built-ins first
            provider = infos.get(impl.plugin_name, PluginInfo(impl.plugin_name, "?")).label
            if infos.get(impl.plugin_name) and infos[impl.plugin_name].source == "builtin":
                provider = f"kdbench {__version__} (built-in)"
            impl.function(register=partial(registries[kind].add, provider=provider))
    return Plugins(pm, registries, infos)


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return ""
