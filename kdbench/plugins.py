"""Plugin discovery: built-ins, installed distributions and local modules.

Built-in components live in :mod:`kdbench.builtins` and are registered through the same
hooks as third-party plugins (as pytest does with its own plugins). Installed packages
are found through the ``kdbench`` entry-point group; ``--plugin module.path`` loads a
local module. A plugin that fails to import, whose hooks pluggy refuses (an argument the
hookspec lacks) or whose register hook raises is recorded as broken and the rest load.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
from dataclasses import dataclass, field

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
                info.error = _one_line(exc)

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
        infos[modname] = info = PluginInfo(modname, "--plugin")
        try:  # pluggy refuses a hookimpl whose arguments the hookspec lacks (PluginValidationError)
            pm.register(module, name=modname)
        except Exception as exc:
            info.error = _one_line(exc)

    return Plugins(pm, _fill_registries(pm, infos), infos)


def _fill_registries(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> dict[str, Registry]:
    """Call every plugin's register_* hooks; a plugin whose hook raises is broken and adds nothing.

    Each plugin's components are collected first (its own duplicates and malformed calls are
    refused inside its hook, as before) and added to the shared registries only when all
    its hooks succeeded, so a half-registered plugin never shows up. Its observer hooks are
    unregistered too. A :class:`KdbenchError` (a duplicate or invalid name) still stops
    everything: it names what to fix.
    """
    calls: dict[str, list[tuple[str, list]]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        hook = getattr(pm.hook, f"register_{kind}")
        for impl in hook.get_hookimpls():  # registration order: built-ins first
            info = infos.setdefault(impl.plugin_name, PluginInfo(impl.plugin_name, "?"))
            if info.error:
                continue
            provider = info.label
            if info.source == "builtin":
                provider = f"kdbench {__version__} (built-in)"
            register, made = _recorder(kind, provider)
            try:
                impl.function(register=register)
            except KdbenchError:
                raise
            except Exception as exc:  # one broken plugin must not take the others (or `kdbench plugins`) down
                info.error = f"register_{kind}: {_one_line(exc)}"
                continue
            calls[kind].append((impl.plugin_name, made))
    for info in infos.values():
        if info.error and pm.get_plugin(info.name) is not None:
            pm.unregister(name=info.name)
    registries = {kind: Registry(kind) for kind in KINDS}
    for kind in KINDS:
        for plugin_name, made in calls[kind]:
            if infos[plugin_name].error:
                continue
            for provider, args, kwargs in made:
                registries[kind].add(*args, provider=provider, **kwargs)
    return registries


def _recorder(kind: str, provider: str):
    """A ``register`` callback for one plugin's hook, and the list of the calls it accepted."""
    own, made = Registry(kind), []

    def register(*args, **kwargs):
        own.add(*args, provider=provider, **kwargs)  # a malformed call raises inside the plugin's hook
        made.append((provider, args, kwargs))

    return register, made


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (pluggy's validation messages span several)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return ""
