"""Named implementations that plugins add: code targets, simplifiers.

A stage keeps a :class:`Registry` of its built-in implementations (named by import path, so
that nothing is imported before it is used). Pieces outside the stages (the Julia side in
:mod:`pdeforge.julia`) are *plugins*: they are named in the package's entry points
(``[project.entry-points."pdeforge.targets"]`` and ``"pdeforge.simplifiers"`` in
pyproject.toml) or call :meth:`Registry.register` themselves, and a stage never imports
them. Like :mod:`pdeforge.errors`, this module may be used by every stage.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable


class Registry:
    """Name -> implementation, for one kind of plugin.

    Args:
        kind: what the names are, for messages ("backend", "simplifier").
        group: the entry-point group plugins are declared in.
        builtins: name -> ``"module"`` or ``"module:attribute"`` of the stage's own
            implementations, imported on first use.
    """

    def __init__(self, kind: str, group: str, builtins: dict[str, str]):
        self.kind = kind
        self.group = group
        self._paths: dict[str, str] = dict(builtins)
        self._loaded: dict[str, object] = {}
        self._discovered = False

    def register(self, name: str, implementation: object) -> None:
        """Add (or replace) ``name``; ``implementation`` is the object or its import path."""
        if isinstance(implementation, str):
            self._paths[name] = implementation
            self._loaded.pop(name, None)
        else:
            self._loaded[name] = implementation
            self._paths.setdefault(name, "")

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            self._paths.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        """Every available name: built-ins first, then plugins."""
        self._discover()
        return list(self._paths)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self):
        return iter(self.names())

    def get(self, name: str) -> object:
        """The implementation of ``name`` (imported now if needed).

        Raises:
            KeyError: ``name`` is unknown; the message lists the valid names.
        """
        if name in self._loaded:
            return self._loaded[name]
        if name not in self.names():
            raise KeyError(f"{self.kind} {name!r} is not available (valid: {', '.join(self.names())})")
        module, _, attr = self._paths[name].partition(":")
        value = importlib.import_module(module)
        for part in filter(None, attr.split(".")):
            value = getattr(value, part)
        self._loaded[name] = value
        return value


def valid(names: Iterable[str]) -> str:
    """``"a, b, c"`` for messages."""
    return ", ".join(names)
