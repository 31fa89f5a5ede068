"""Fixtures shared by the core tests."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from stevedore import ExtensionManager, _cache


class FakeSite:
    """A directory on ``sys.path`` where a test installs throwaway distributions.

    Each distribution is a ``*.dist-info`` directory (METADATA, entry_points.txt) beside
    its modules, which is all entry-point discovery looks at.

    stevedore remembers entry points in three places: a per-group dict on
    `ExtensionManager` that lives as long as the process, and a cache object created
    when stevedore is imported, which keeps scans in memory (keyed by ``sys.path``) and
    in files under ``$XDG_CACHE_HOME/python-entrypoints``. `rescan` replaces all three
    for the duration of the test: an empty dict, and a fresh cache object whose
    directory (through ``XDG_CACHE_HOME``) is under the test's ``tmp_path`` and holds
    a ``.disable`` marker, so it never writes a file and every scan is real.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self._monkeypatch = monkeypatch

    def install(
        self,
        name: str,
        *,
        version: str = "1.0",
        entry_points: Mapping[str, Mapping[str, str]],
        modules: Mapping[str, str] | None = None,
    ) -> None:
        """Install distribution ``name`` with ``entry_points`` {group: {name: target}}."""
        for module, source in (modules or {}).items():
            path = self.root.joinpath(*module.split(".")).with_suffix(".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            for package in path.relative_to(self.root).parents:
                if package != Path("."):
                    (self.root / package / "__init__.py").touch()
            path.write_text(source, encoding="utf-8")
        dist_info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        sections = []
        for group, declared in entry_points.items():
            lines = "".join(f"{key} = {target}\n" for key, target in declared.items())
            sections.append(f"[{group}]\n{lines}")
        (dist_info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
        importlib.invalidate_caches()
        self.rescan()

    def rescan(self) -> None:
        """Make stevedore forget what it discovered; the next lookup scans ``sys.path``."""
        cache_home = self.root.parent / "cache"
        cache_dir = cache_home / "python-entrypoints"
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / ".disable").touch()
        self._monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
        cache = _cache.Cache()
        self._monkeypatch.setattr(_cache, "_c", cache)
        self._monkeypatch.setattr(_cache, "get_group_all", cache.get_group_all)
        self._monkeypatch.setattr(_cache, "get_group_named", cache.get_group_named)
        self._monkeypatch.setattr(_cache, "get_single", cache.get_single)
        self._monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """A `FakeSite` on ``sys.path``; its modules and entry points vanish after the test."""
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    site = FakeSite(root, monkeypatch)
    site.rescan()
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules[name], "__file__", None)
        if origin and Path(origin).is_relative_to(root):
            del sys.modules[name]
    importlib.invalidate_caches()
