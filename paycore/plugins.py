"""Discovery and loading of plugins: the only module that reads entry points.

Three entry-point groups, all read through stevedore:

- ``paycore.gateways``: gateway plugins, each a `Gateway` subclass whose ``name``
  equals its entry-point name;
- ``paycore.sandboxes``: provider sandboxes, each a class whose ``name`` equals its
  entry-point name;
- ``paycore.hooks``: modules (or objects) holding hook implementations, registered in
  the pluggy plugin manager built by `hook_manager`.

A plugin that cannot be used is an error, never a log line: a failed import, a target
of the wrong kind, a name that does not match, and a name that is not installed all
raise `PluginError` naming the plugin, its entry point and distribution, and (chained
with ``raise … from``) the real cause.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import threading
from collections.abc import Iterable
from typing import Any, NoReturn

import pluggy
from attrs import frozen
from stevedore import ExtensionManager, NamedExtensionManager

from paycore import hookspecs
from paycore.errors import PluginError
from paycore.gateways.base import Gateway

__all__ = [
    "GATEWAYS_GROUP",
    "HOOKS_GROUP",
    "SANDBOXES_GROUP",
    "EntryPointInfo",
    "available_gateways",
    "available_hooks",
    "available_sandboxes",
    "gateway_class",
    "hook_manager",
    "load_gateways",
    "new_hook_manager",
    "sandbox_class",
]

GATEWAYS_GROUP = "paycore.gateways"
SANDBOXES_GROUP = "paycore.sandboxes"
HOOKS_GROUP = "paycore.hooks"

_KIND = {GATEWAYS_GROUP: "gateway", SANDBOXES_GROUP: "sandbox", HOOKS_GROUP: "hooks"}


@frozen
class EntryPointInfo:
    """One installed entry point, read without importing it.

    ``target`` is ``"module:attr"``; ``distribution`` and ``version`` name the installed
    distribution that declares it (``None`` when it cannot be told).
    """

    name: str
    group: str
    target: str
    distribution: str | None
    version: str | None

    @property
    def provider(self) -> str:
        """The declaring distribution as ``"name version"``, for messages and listings."""
        if self.distribution is None:
            return "an unknown distribution"
        return f"{self.distribution} {self.version}" if self.version else self.distribution

    def describe(self) -> str:
        """``"'dummy' (paycore.gateways.dummy:DummyGateway, from paycore 0.1.0)"``."""
        return f"{self.name!r} ({self.target}, from {self.provider})"


# -- discovery ---------------------------------------------------------------------


def available_gateways() -> dict[str, EntryPointInfo]:
    """Every installed gateway plugin by name, sorted, without importing any of them."""
    return _available(GATEWAYS_GROUP)


def available_sandboxes() -> dict[str, EntryPointInfo]:
    """Every installed sandbox by name, sorted, without importing any of them."""
    return _available(SANDBOXES_GROUP)


def available_hooks() -> dict[str, EntryPointInfo]:
    """Every installed hook-implementation entry point by name, without importing them."""
    return _available(HOOKS_GROUP)


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    # A manager asked for no names lists the group without importing anything. The
    # list is stevedore's own, kept for the life of the process.
    manager: NamedExtensionManager[Any] = NamedExtensionManager(
        group, names=[], on_missing_entrypoints_callback=None
    )
    return manager.list_entry_points()


# Per group: the entry-point list stevedore returned, and what was made of it. Finding
# the distributions means reading every installed distribution's metadata, too slow to
# repeat on each lookup; it is redone whenever stevedore lists the group anew.
_described: dict[str, tuple[list[importlib.metadata.EntryPoint], dict[str, EntryPointInfo]]] = {}


def _available(group: str) -> dict[str, EntryPointInfo]:
    entry_points = _entry_points(group)
    cached = _described.get(group)
    if cached is None or cached[0] is not entry_points:
        cached = (entry_points, _describe(group, entry_points))
        _described[group] = cached
    return dict(cached[1])


def _describe(
    group: str, entry_points: list[importlib.metadata.EntryPoint]
) -> dict[str, EntryPointInfo]:
    owners = _owners(group)
    by_name: dict[str, list[EntryPointInfo]] = {}
    for entry_point in entry_points:
        name, target = entry_point.name, entry_point.value
        distribution, version = owners.get((name, target), (None, None))
        info = EntryPointInfo(
            name=name, group=group, target=target, distribution=distribution, version=version
        )
        by_name.setdefault(name, []).append(info)
    infos: dict[str, EntryPointInfo] = {}
    for name in sorted(by_name):
        found = by_name[name]
        if len(found) > 1:
            raise PluginError(
                f"{_KIND[group]} plugin {name!r} is declared more than once in the "
                f"{group} entry-point group: {'; '.join(info.describe() for info in found)}; "
                "uninstall all but one of these distributions"
            )
        infos[name] = found[0]
    return infos


def _owners(group: str) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """Which installed distribution declares each (name, target) of ``group``.

    stevedore's entry-point cache keeps only name, target and group, so distributions
    are matched by what they declare.
    """
    owners: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for dist in importlib.metadata.distributions():
        for declared in dist.entry_points.select(group=group):
            owners.setdefault(
                (declared.name, declared.value), (dist.metadata["Name"], dist.version)
            )
    return owners


# -- loading -----------------------------------------------------------------------


def gateway_class(name: str) -> type[Gateway]:
    """The `Gateway` subclass installed under ``name`` in ``paycore.gateways``.

    Raises `PluginError` when no such plugin is installed (listing those that are),
    when it fails to import (with the real cause), or when it loads something other
    than a `Gateway` subclass named ``name``.
    """
    info, loaded = _load_one(GATEWAYS_GROUP, name)
    return _checked_gateway(info, loaded)


def load_gateways() -> dict[str, type[Gateway]]:
    """Every installed gateway plugin by name, sorted; any broken one raises `PluginError`."""
    return {
        name: _checked_gateway(info, loaded)
        for name, (info, loaded) in _load_all(GATEWAYS_GROUP).items()
    }


def sandbox_class(name: str) -> type[Any]:
    """The sandbox class installed under ``name`` in ``paycore.sandboxes``.

    Raises `PluginError` like `gateway_class`; the target must be a class whose
    ``name`` is ``name``.
    """
    info, loaded = _load_one(SANDBOXES_GROUP, name)
    if not inspect.isclass(loaded):
        raise PluginError(
            f"sandbox plugin {info.describe()} must load a class, but it loads {_kind_of(loaded)}"
        )
    _check_name(info, loaded)
    return loaded


def _checked_gateway(info: EntryPointInfo, loaded: object) -> type[Gateway]:
    if not (inspect.isclass(loaded) and issubclass(loaded, Gateway)):
        raise PluginError(
            f"gateway plugin {info.describe()} must load a subclass of "
            f"paycore.gateways.base.Gateway, but it loads {_kind_of(loaded)}"
        )
    _check_name(info, loaded)
    return loaded


def _check_name(info: EntryPointInfo, loaded: type[Any]) -> None:
    declared = getattr(loaded, "name", None)
    if declared == info.name:
        return
    what = f"is named {declared!r}" if isinstance(declared, str) else "has no name"
    raise PluginError(
        f"{_KIND[info.group]} plugin {info.describe()} loads {loaded.__qualname__}, which "
        f"{what}; its name must equal the entry-point name {info.name!r}"
    )


def _kind_of(loaded: object) -> str:
    if inspect.ismodule(loaded):
        return f"the module {loaded.__name__}"
    if inspect.isclass(loaded):
        return f"the class {loaded.__module__}.{loaded.__qualname__}"
    if callable(loaded):
        return f"the {type(loaded).__name__} {getattr(loaded, '__qualname__', '?')}"
    return f"an instance of {type(loaded).__qualname__}"


def _load_one(group: str, name: str) -> tuple[EntryPointInfo, object]:
    installed = _available(group)
    info = installed.get(name)
    if info is None:
        kind = _KIND[group]
        listing = ", ".join(installed) if installed else "none"
        raise PluginError(
            f"no {kind} plugin named {name!r} is installed (installed {kind} plugins: "
            f"{listing}); install the distribution that provides it"
        )
    manager: NamedExtensionManager[Any] = NamedExtensionManager(
        group,
        names=[name],
        on_load_failure_callback=_LoadFailure(installed),
        on_missing_entrypoints_callback=None,
    )
    (extension,) = manager.extensions
    return info, extension.plugin


def _load_all(group: str) -> dict[str, tuple[EntryPointInfo, object]]:
    installed = _available(group)
    manager: ExtensionManager[Any] = ExtensionManager(
        group, on_load_failure_callback=_LoadFailure(installed)
    )
    loaded = {extension.name: extension for extension in manager.extensions}
    return {name: (info, loaded[name].plugin) for name, info in installed.items()}


class _LoadFailure:
    """stevedore's load-failure callback: turns the failure into a `PluginError`.

    stevedore calls it from inside its ``except`` block, so raising here stops the
    loading and the original exception becomes the ``__cause__``.
    """

    def __init__(self, installed: dict[str, EntryPointInfo]) -> None:
        self._installed = installed

    def __call__(
        self,
        manager: ExtensionManager[Any],
        entry_point: importlib.metadata.EntryPoint,
        error: BaseException,
    ) -> NoReturn:
        info = self._installed.get(entry_point.name) or EntryPointInfo(
            name=entry_point.name,
            group=manager.namespace,
            target=entry_point.value,
            distribution=None,
            version=None,
        )
        raise PluginError(_load_failure_message(info, error)) from error


def _load_failure_message(info: EntryPointInfo, error: BaseException) -> str:
    cause = " ".join(f"{type(error).__name__}: {error}".split())
    if isinstance(error, ImportError):
        advice = f"install what it needs, or uninstall {info.distribution or 'it'}"
    else:
        advice = f"fix or uninstall {info.distribution or 'it'}"
    return (
        f"{_KIND[info.group]} plugin {info.name!r} failed to load: entry point "
        f"{info.name} = {info.target} in group {info.group}, from {info.provider}, "
        f"raised {cause}; {advice}"
    )


# -- hooks -------------------------------------------------------------------------

_default_manager: pluggy.PluginManager | None = None
_default_lock = threading.Lock()


def hook_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use (see `new_hook_manager`).

    Raises `PluginError` (and builds nothing) when a hook plugin is broken; the next
    call tries again.
    """
    global _default_manager
    manager = _default_manager
    if manager is None:
        with _default_lock:
            if _default_manager is None:
                _default_manager = new_hook_manager()
            manager = _default_manager
    return manager


def new_hook_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with paycore's hook specifications.

    With ``load_entry_points`` (the default), every ``paycore.hooks`` entry point is
    loaded and registered under its entry-point name; without it the manager has no
    implementations, for tests that register their own. Raises `PluginError` when a hook
    plugin fails to import, clashes with another, or implements a ``paycore_*`` hook
    that has no specification or with parameters the specification does not have.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if load_entry_points:
        _register_hooks(manager, _load_all(HOOKS_GROUP).values())
    return manager


def _register_hooks(
    manager: pluggy.PluginManager, plugins: Iterable[tuple[EntryPointInfo, object]]
) -> None:
    infos: dict[str, EntryPointInfo] = {}
    for info, plugin in plugins:
        try:
            manager.register(plugin, name=info.name)
        except (ValueError, pluggy.PluginValidationError) as error:
            raise PluginError(
                f"hooks plugin {info.describe()} cannot be registered: "
                f"{' '.join(str(error).split())}"
            ) from error
        infos[info.name] = info
    # What ``check_pending`` checks, with a message naming the hook and the distribution.
    for hook_name in sorted(vars(manager.hook)):
        caller = getattr(manager.hook, hook_name)
        if hook_name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                owner = infos.get(impl.plugin_name)
                where = owner.describe() if owner else repr(impl.plugin_name)
                raise PluginError(
                    f"hooks plugin {where} implements {hook_name}, which is not a paycore "
                    "hook; check its name against paycore.hookspecs"
                )
