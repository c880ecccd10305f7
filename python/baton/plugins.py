"""Plugins: configure Baton from a ``plugins.toml`` document, and write plugin components in
Python.

A document is ``{"version": 1, "components": [{"kind", "enabled"?, "config"?}, ...],
"policy"?: {...}}`` (TOML or JSON, the reference's format). :func:`validate` is pure;
:func:`initialize` validates, replaces the active configuration and reports what it
installed; :func:`clear` removes it.

A Python component is any object with ``kind: str``, ``validate(config) -> iterable of
{"level": "error"|"warning", "code", "field", "message"}`` and ``activate(config,
activation)``, where ``activation.register(kind, name, fn, priority=0)`` installs middleware
or a subscriber (named ``<component kind>.<name>``)::

    class AuditLog:
        kind = "audit_log"
        def validate(self, config):
            return [] if isinstance(config.get("path"), str) else [
                {"level": "error", "code": "missing_field", "field": "path", "message": "path is required"}]
        def activate(self, config, activation):
            activation.register("subscriber", "writer", make_writer(config["path"]))

    baton.plugins.register_component(AuditLog())
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Protocol, Union

from . import _native
from ._native import Activation

__all__ = ["Activation", "Component", "clear", "initialize", "load", "register_component", "validate"]


class Component(Protocol):
    """A plugin component written in Python."""

    kind: str

    def validate(self, config: Dict[str, Any]) -> Iterable[Mapping[str, str]]: ...

    def activate(self, config: Dict[str, Any], activation: Activation) -> None: ...


def validate(config: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Checks a plugins document; returns diagnostics ``{level, code, component?, field?, message}``."""
    return _native.plugin_validate(dict(config))


def initialize(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Validates and activates a plugins document, replacing the active one. Raises
    ``InvalidArgumentError`` (with ``.diagnostics``) when it has errors."""
    return _native.plugin_initialize(dict(config))


def clear() -> None:
    """Removes everything the active plugins document installed."""
    _native.plugin_clear()


def load(path: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]:
    """Reads a plugins document from a TOML (or ``.json``) file."""
    return _native.plugin_load(os.fspath(path))


def register_component(component: Component) -> None:
    """Makes a Python component kind available to plugin documents."""
    _native.register_component(component)
