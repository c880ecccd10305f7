"""Shared fixtures: a recording subscriber, removed after each test."""

from __future__ import annotations

import inspect
import itertools
from typing import Any, Dict, Iterator, List

import pytest

import baton

_ids = itertools.count()


class Recorder:
    def __init__(self) -> None:
        self.events: List[Any] = []
        self.name = f"test.recorder.{next(_ids)}"

    def __call__(self, event: baton.Event) -> None:
        self.events.append(event)  # kept as the lazy Event (a mapping): tests read it as one

    def flushed(self) -> List[Dict[str, Any]]:
        assert baton.flush(10.0)
        return self.events

    def names(self) -> List[str]:
        out = []
        for e in self.flushed():
            suffix = f":{e['scope_category']}" if e["kind"] == "scope" else ""
            out.append(e["name"] + suffix)
        return out

    def by_name(self, name: str) -> List[Dict[str, Any]]:
        return [e for e in self.flushed() if e["name"] == name]


@pytest.fixture
def rec() -> Iterator[Recorder]:
    r = Recorder()
    baton.subscribe(r.name, r)
    yield r
    baton.flush(10.0)
    baton.deregister("subscriber", r.name)


@pytest.fixture
def names() -> Iterator[List[str]]:
    """Middleware names registered by a test; deregistered (from every family) afterwards."""
    registered: List[str] = []
    yield registered
    for name in registered:
        for kind in baton.FAMILIES:
            baton.deregister(kind, name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Tests that use asyncio run with the native awaitables (CPython >= 3.10) and with the
    # Python paths of baton._bridge that CPython 3.9 uses: both must behave the same.
    if "asyncio" in inspect.getsource(metafunc.function):
        metafunc.parametrize("await_path", ["native", "python"], indirect=True)


@pytest.fixture(autouse=True)
def await_path(request: pytest.FixtureRequest) -> Iterator[str]:
    path = str(getattr(request, "param", "native"))
    baton._native._set_native_awaitables(path == "native")
    yield path
    baton._native._set_native_awaitables(True)
