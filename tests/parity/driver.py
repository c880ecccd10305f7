#!/usr/bin/env python3
"""Baton parity driver.

Runs every parity scenario on every binding's runner, validates and normalizes each
runner's output, compares it with the scenario's ``expect`` and with the other bindings'
outputs, and prints one line per scenario x binding, then
``parity: N passed, N failed``.

The scenario format and the normalization rules are the contract in ``PARITY.md``;
``tests/parity/README.md`` documents the decisions this driver makes where that contract
leaves room. Standard library only (Python 3.11).

Usage::

    python3 tests/parity/driver.py [--scenarios DIR] [--bindings rust,python,...]
                                   [--raw BINDING SCENARIO] [--bless] [-v]
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[2]
PARITY_DIR = REPO / "tests" / "parity"
DEFAULT_SCENARIOS = PARITY_DIR / "scenarios"
RUNNER_TIMEOUT = 120.0  # seconds per scenario and binding
EXPECT_KEYS = ("events", "results", "subscribers")


# ------------------------------------------------------------------------------
# Bindings
# ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    """How to start one binding's runner.

    ``runner`` returns the file that must exist for the binding to be available;
    ``argv(runner, scenario)`` returns the command that runs the runner on one scenario
    path. Commands run with the repository root as the working directory.
    """

    runner: Callable[[], Path]
    argv: Callable[[Path, str], list[str]]


def cargo_target_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    if not target:
        return REPO / "target"
    path = Path(target)
    return path if path.is_absolute() else REPO / path


BINDINGS: dict[str, Binding] = {
    # The Rust runner: `cargo build --release -p baton-parity-rust`.
    "rust": Binding(
        runner=lambda: cargo_target_dir() / "release" / "baton-parity-rust",
        argv=lambda runner, scenario: [str(runner), scenario],
    ),
    # The other bindings: each provides an executable `tests/parity/runners/<name>/run` that
    # takes the scenario path (a wrapper that starts the real runner: a venv's python, node,
    # a prebuilt Go binary). A binding is available as soon as that file exists.
    **{
        name: Binding(
            runner=lambda name=name: PARITY_DIR / "runners" / name / "run",
            argv=lambda runner, scenario: [str(runner), scenario],
        )
        for name in ("python", "node", "wasm", "go")
    },
}


def override_env(name: str) -> str:
    """The environment variable overriding a binding's runner (a full command path)."""
    return "BATON_PARITY_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


@dataclass
class Resolved:
    name: str
    runner: Path
    argv: Callable[[str], list[str]]

    @property
    def available(self) -> bool:
        return self.runner.exists()


def resolve(name: str, table: dict[str, Binding]) -> Resolved:
    """Resolve a binding, honouring ``BATON_PARITY_<NAME>``.

    The override is a full path, run as ``<path> <scenario>``.
    """
    env = os.environ.get(override_env(name))
    if env:
        path = Path(env).absolute()
        return Resolved(name, path, lambda scenario: [str(path), scenario])
    binding = table[name]
    runner = binding.runner()
    return Resolved(name, runner, lambda scenario: binding.argv(runner, scenario))


# ------------------------------------------------------------------------------
# ATOF 0.1 validation
# ------------------------------------------------------------------------------

UUID_RE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I
)
TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"
)
TRACE_RE = re.compile(r"[0-9a-f]{32}")
SPAN_RE = re.compile(r"[0-9a-f]{16}")
TRACEPARENT_RE = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})"
)
COMMON_KEYS = (
    "kind",
    "atof_version",
    "uuid",
    "parent_uuid",
    "timestamp",
    "name",
    "data",
    "data_schema",
    "metadata",
)
SCOPE_KEYS = ("scope_category", "category", "attributes", "category_profile")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


def timestamp_micros(value: Any) -> int | None:
    """Epoch microseconds of an ATOF timestamp, or None when it is not a valid one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or TIMESTAMP_RE.fullmatch(value) is None:
        return None
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc
        )
    except ValueError:
        return None
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _event_shape_errors(event: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    missing = [k for k in COMMON_KEYS if k not in event]
    kind = event.get("kind")
    if kind == "scope":
        missing += [k for k in SCOPE_KEYS if k not in event]
    if missing:
        problems.append("missing " + ", ".join(missing))
    if kind not in ("scope", "mark"):
        problems.append(f'kind {_short(kind)} is not "scope" or "mark"')
    if "atof_version" in event and event["atof_version"] != "0.1":
        problems.append(f"atof_version {_short(event['atof_version'])} is not \"0.1\"")
    if "uuid" in event and not is_uuid(event["uuid"]):
        problems.append(f"uuid {_short(event['uuid'])} is not a UUID")
    parent = event.get("parent_uuid")
    if parent is not None and not is_uuid(parent):
        problems.append(f"parent_uuid {_short(parent)} is not null or a UUID")
    if "timestamp" in event and timestamp_micros(event["timestamp"]) is None:
        problems.append(
            f"timestamp {_short(event['timestamp'])} is neither "
            "YYYY-MM-DDTHH:MM:SS.ffffffZ nor integer epoch microseconds"
        )
    if "name" in event and not isinstance(event["name"], str):
        problems.append(f"name {_short(event['name'])} is not a string")
    if "data_schema" in event and event["data_schema"] is not None:
        schema = event["data_schema"]
        if not (
            isinstance(schema, dict)
            and isinstance(schema.get("name"), str)
            and isinstance(schema.get("version"), str)
        ):
            problems.append(
                f"data_schema {_short(schema)} is not null or {{name, version}} strings"
            )
    if "metadata" in event and not isinstance(event["metadata"], dict):
        problems.append(f"metadata {_short(event['metadata'])} is not an object")
    if kind == "scope":
        which = event.get("scope_category", "start")
        if which not in ("start", "end"):
            problems.append(f'scope_category {_short(which)} is not "start" or "end"')
        attrs = event.get("attributes", [])
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            problems.append(f"attributes {_short(attrs)} is not an array of strings")
        elif attrs != sorted(set(attrs)):
            problems.append(
                f"attributes {_short(attrs)} are not sorted and de-duplicated"
            )
    elif kind == "mark" and "scope_category" in event:
        problems.append("a mark has scope_category")
    # Required on scopes, optional on marks; checked when present.
    if "category" in event and not isinstance(event["category"], str):
        problems.append(f"category {_short(event['category'])} is not a string")
    profile = event.get("category_profile")
    if profile is not None and not isinstance(profile, dict):
        problems.append(f"category_profile {_short(profile)} is not an object or null")
    return problems


def validate_events(
    events: Any,
    where: str = "events",
    known_starts: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Check that ``events`` is a list of valid ATOF 0.1 events; return the problems.

    Besides each event's shape: a scope end must follow the start with the same uuid,
    at least 1 us later, sharing its name, parent_uuid, category and attributes; a uuid
    starts at most one scope and ends it at most once; a mark's uuid is used by no other
    event.

    ``known_starts`` (uuid -> start event) lets an end whose start is not in this list
    be checked against a start seen elsewhere: a subscriber registered while a scope was
    open (e.g. a scope-local one) receives that scope's end but not its start.
    """
    if not isinstance(events, list):
        return [f"{where} is not an array"]
    problems: list[str] = []
    starts: dict[str, dict[str, Any]] = {}
    ended: set[str] = set()
    used: set[str] = set()
    for index, event in enumerate(events):
        at = f"{where}[{index}]"
        if not isinstance(event, dict):
            problems.append(f"{at}: not an object")
            continue
        shape = _event_shape_errors(event)
        if shape:
            problems.extend(f"{at}: {p}" for p in shape)
            continue
        uuid = event["uuid"].lower()
        if event["kind"] == "mark":
            if uuid in used:
                problems.append(f"{at}: mark uuid {event['uuid']} is already used")
            used.add(uuid)
            continue
        if event["scope_category"] == "start":
            if uuid in used:
                problems.append(
                    f"{at}: scope start uuid {event['uuid']} is already used"
                )
            used.add(uuid)
            starts[uuid] = event
            continue
        # A scope end.
        start = starts.get(uuid)
        if start is None and known_starts is not None and uuid not in used:
            start = known_starts.get(uuid)
        if start is None:
            problems.append(f"{at}: end of {event['uuid']} without an earlier start")
            continue
        if uuid in ended:
            problems.append(f"{at}: second end of {event['uuid']}")
            continue
        ended.add(uuid)
        used.add(uuid)
        for key in ("name", "parent_uuid", "category", "attributes"):
            if event[key] != start[key]:
                problems.append(
                    f"{at}: end {key} {_short(event[key])} differs from its start's "
                    f"{_short(start[key])}"
                )
        begin = timestamp_micros(start["timestamp"])
        end = timestamp_micros(event["timestamp"])
        if begin is not None and end is not None and end < begin + 1:
            problems.append(
                f"{at}: end timestamp {event['timestamp']} is not at least 1 us after "
                f"its start's {start['timestamp']}"
            )
    return problems


def validate_output(output: Any) -> list[str]:
    """Validate a runner's whole output object (events, subscribers, results)."""
    if not isinstance(output, dict):
        return ["output is not a JSON object"]
    problems: list[str] = []
    if "events" not in output:
        problems.append('output has no "events"')
    events = output.get("events", [])
    problems += validate_events(events, "events")
    starts: dict[str, dict[str, Any]] = {}
    if isinstance(events, list):
        for event in events:
            if (
                isinstance(event, dict)
                and event.get("kind") == "scope"
                and event.get("scope_category") == "start"
                and is_uuid(event.get("uuid"))
            ):
                starts.setdefault(event["uuid"].lower(), event)
    subscribers = output.get("subscribers", {})
    if not isinstance(subscribers, dict):
        problems.append("subscribers is not an object")
    else:
        for name in sorted(subscribers):
            problems += validate_events(
                subscribers[name], f"subscribers.{name}", starts
            )
    if not isinstance(output.get("results", {}), dict):
        problems.append("results is not an object")
    return problems


class InvalidOutput(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


# ------------------------------------------------------------------------------
# Normalization
# ------------------------------------------------------------------------------


def normalize_numbers(value: Any) -> Any:
    """Integral finite floats become ints (1.0 -> 1), recursively; bools stay bools."""
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return int(value)
        return value
    if isinstance(value, list):
        return [normalize_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize_numbers(v) for k, v in value.items()}
    return value


def _is_atof_event(value: Any) -> bool:
    return isinstance(value, dict) and "atof_version" in value and "kind" in value


def _strip_event(event: dict[str, Any]) -> dict[str, Any]:
    """Drop what normalization removes: timestamp and metadata["exception.type"]."""
    out = {k: v for k, v in event.items() if k != "timestamp"}
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and "exception.type" in metadata:
        out["metadata"] = {k: v for k, v in metadata.items() if k != "exception.type"}
    return out


def _strip_result_events(value: Any) -> Any:
    """ATOF events inside results (e.g. read back from an exporter's file) lose the
    same fields as the events themselves."""
    if isinstance(value, list):
        return [_strip_result_events(v) for v in value]
    if isinstance(value, dict):
        stripped = {k: _strip_result_events(v) for k, v in value.items()}
        return _strip_event(stripped) if _is_atof_event(stripped) else stripped
    return value


class UuidMap:
    """UUIDs -> "@1", "@2", ... in order of first appearance (case-insensitive)."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def see(self, value: Any) -> None:
        if is_uuid(value) and value.lower() not in self.ids:
            self.ids[value.lower()] = f"@{len(self.ids) + 1}"

    def see_strings(self, value: Any) -> None:
        """Number every UUID string in ``value`` (objects in sorted key order)."""
        if isinstance(value, str):
            self.see(value)
        elif isinstance(value, list):
            for item in value:
                self.see_strings(item)
        elif isinstance(value, dict):
            for key in sorted(value):
                self.see(key)
                self.see_strings(value[key])

    def string(self, text: str, ids_only: bool = False) -> str:
        """Map one string.

        A seen UUID (the whole string, or inside a longer one) becomes its "@N"; unless
        ``ids_only``, a trace id / span id / traceparent loses its random hex.
        """
        if is_uuid(text):
            return self.ids.get(text.lower(), text)
        if len(text) > 36:  # a seen UUID inside a longer string (e.g. an error message)
            text = UUID_RE.sub(
                lambda m: self.ids.get(m.group(0).lower(), m.group(0)), text
            )
        if ids_only:
            return text
        if TRACE_RE.fullmatch(text):
            return "#trace"
        if SPAN_RE.fullmatch(text):
            return "#span"
        match = TRACEPARENT_RE.fullmatch(text)
        if match:
            return f"{match.group(1)}-#trace-#span-{match.group(4)}"
        # Exported documents (ATIF steps, say) carry wall-clock times of their own.
        if TIMESTAMP_RE.fullmatch(text):
            return "#timestamp"
        return text

    def apply(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, list):
            return [self.apply(v) for v in value]
        if isinstance(value, dict):
            return {
                self.string(k, ids_only=True): self.apply(v) for k, v in value.items()
            }
        return value


def normalize_output(output: Any) -> dict[str, Any]:
    """Validate and normalize a runner's output (PARITY.md, "Normalization").

    Returns ``{"events": [...], "results": {...}, "subscribers": {...}}``; raises
    InvalidOutput naming every problem when an event is not valid ATOF 0.1.
    """
    problems = validate_output(output)
    if problems:
        raise InvalidOutput(problems)
    events = [_strip_event(e) for e in output["events"]]
    subscribers = {
        name: [_strip_event(e) for e in output.get("subscribers", {})[name]]
        for name in sorted(output.get("subscribers", {}))
    }
    results = _strip_result_events(output.get("results", {}))

    uuids = UuidMap()
    for event in events:
        uuids.see(event["uuid"])
        uuids.see(event["parent_uuid"])
    for name in subscribers:  # sorted
        for event in subscribers[name]:
            uuids.see(event["uuid"])
            uuids.see(event["parent_uuid"])
    uuids.see_strings(results)

    return normalize_numbers(
        {
            "events": uuids.apply(events),
            "results": uuids.apply(results),
            "subscribers": uuids.apply(subscribers),
        }
    )


# ------------------------------------------------------------------------------
# Comparison
# ------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    """The comparison form: numbers by value, sorted keys (so true != 1, 1 == 1.0)."""
    return json.dumps(
        normalize_numbers(value),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def pretty(value: Any) -> str:
    return json.dumps(
        normalize_numbers(value), sort_keys=True, ensure_ascii=False, indent=2
    )


def first_difference(
    expected: Any,
    actual: Any,
    path: str = "",
    labels: tuple[str, str] = ("expected", "got"),
) -> str | None:
    """A short description of the first place where two JSON values differ, or None.

    ``labels`` name the two sides: ``"<path>: expected X, got Y"`` by default,
    ``("node has", "rust has")`` when comparing two bindings.
    """
    if canonical(expected) == canonical(actual):
        return None
    left, right = labels
    where = path or "(root)"
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                return f"{sub}: {left} {_short(expected[key], 60)}, {right} nothing"
            if key not in expected:
                return f"{sub}: {left} nothing, {right} {_short(actual[key], 60)}"
            found = first_difference(expected[key], actual[key], sub, labels)
            if found:
                return found
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (e, a) in enumerate(zip(expected, actual)):
            found = first_difference(e, a, f"{path}[{index}]", labels)
            if found:
                return found
        return f"{where}: {left} {len(expected)} items, {right} {len(actual)}"
    return f"{where}: {left} {_short(expected, 60)}, {right} {_short(actual, 60)}"


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """Compare a normalized output with a scenario's ``expect``.

    Only the keys present in ``expect`` (events, results, subscribers) are compared,
    each exactly (numbers by value, key order ignored). Returns the first difference or
    None.
    """
    for key in EXPECT_KEYS:
        if key in expected:
            found = first_difference(expected[key], actual.get(key), key)
            if found:
                return found
    return None


def diff_text(expected: Any, actual: Any, from_name: str, to_name: str) -> str:
    lines = difflib.unified_diff(
        pretty(expected).splitlines(),
        pretty(actual).splitlines(),
        from_name,
        to_name,
        lineterm="",
    )
    return "\n".join(lines)


# ------------------------------------------------------------------------------
# Running runners
# ------------------------------------------------------------------------------


@dataclass
class RunResult:
    returncode: int | None  # None when it timed out or could not start
    stdout: bytes = b""
    stderr: bytes = b""
    error: str | None = None  # why it could not run (not found, timeout)
    timed_out: bool = False


def run_command(argv: list[str], timeout: float) -> RunResult:
    try:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # so a timeout can end the whole process group
        )
    except OSError as exc:
        return RunResult(None, error=f"cannot start {argv[0]}: {exc.strerror or exc}")
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        stdout, stderr = proc.communicate()
        return RunResult(
            None, stdout, stderr, error=f"timed out after {timeout:g} s", timed_out=True
        )
    return RunResult(proc.returncode, stdout, stderr)


def stderr_tail(stderr: bytes, lines: int = 5, chars: int = 400) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    if not text:
        return ""
    tail = " | ".join(
        line.rstrip() for line in text.splitlines()[-lines:] if line.strip()
    )
    return tail if len(tail) <= chars else "..." + tail[-chars:]


def parse_runner_output(result: RunResult) -> tuple[Any, str | None]:
    """The runner's JSON object, or (None, reason) when the run failed."""

    def why(reason: str) -> str:
        tail = stderr_tail(result.stderr)
        return f"{reason}; stderr: {tail}" if tail else reason

    if result.error:
        return None, why(result.error)
    if result.returncode != 0:
        return None, why(f"runner exited with status {result.returncode}")
    try:
        text = result.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return None, why("stdout is not UTF-8")
    if not text.strip():
        return None, why("runner printed nothing")
    try:
        output = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, why(f"stdout is not one JSON object ({exc})")
    if not isinstance(output, dict):
        return None, why("stdout is not one JSON object")
    return output, None


# ------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------


@dataclass
class Outcome:
    binding: str
    status: str  # PASS, FAIL, SKIP
    reason: str = ""
    detail: list[str] = field(default_factory=list)  # printed with -v
    normalized: dict[str, Any] | None = None


def scenario_files(path: Path) -> list[Path]:
    """The scenarios to run, as absolute paths (runners start in the repository root)."""
    path = path.resolve()
    if path.is_file():
        return [path]
    return sorted(path.glob("*.json"), key=lambda p: p.name)


def load_scenario(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        scenario = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"cannot read scenario: {exc}"
    if not isinstance(scenario, dict):
        return None, "scenario is not a JSON object"
    if "skip" in scenario and not isinstance(scenario["skip"], dict):
        return None, "skip is not an object of binding -> reason"
    if "expect" in scenario and not isinstance(scenario["expect"], dict):
        return None, "expect is not an object"
    return scenario, None


def skip_reason(scenario: dict[str, Any], binding: str) -> tuple[bool, str | None]:
    """(skipped, reason); a skip whose reason is not a non-empty string is an error."""
    skip = scenario.get("skip") or {}
    if binding not in skip:
        return False, None
    reason = skip[binding]
    if not isinstance(reason, str) or not reason.strip():
        return True, None
    return True, reason.strip()


def run_binding(
    resolved: Resolved, scenario_path: Path, scenario: dict[str, Any], timeout: float
) -> Outcome:
    """Run one binding on one scenario and check its output against ``expect``."""
    name = resolved.name
    skipped, reason = skip_reason(scenario, name)
    if skipped and reason is None:
        return Outcome(name, "FAIL", f"skip of {name} names no reason")
    if not resolved.available:
        return Outcome(
            name, "FAIL", f"runner for {name} not found at {resolved.runner}"
        )
    if skipped:
        return Outcome(name, "SKIP", reason or "")
    result = run_command(resolved.argv(str(scenario_path)), timeout)
    output, why = parse_runner_output(result)
    if why:
        detail = []
        if result.stderr.strip():
            detail = ["stderr:"] + [
                "  " + line
                for line in result.stderr.decode("utf-8", "replace").splitlines()[-40:]
            ]
        return Outcome(name, "FAIL", why, detail)
    try:
        normalized = normalize_output(output)
    except InvalidOutput as exc:
        more = f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        return Outcome(name, "FAIL", exc.problems[0] + more, list(exc.problems))
    outcome = Outcome(name, "PASS", normalized=normalized)
    expect = scenario.get("expect")
    if expect is not None:
        expected = normalize_numbers(expect)
        found = compare(expected, normalized)
        if found:
            outcome.status = "FAIL"
            outcome.reason = f"differs from expect at {found}"
            shown = {k: expected[k] for k in EXPECT_KEYS if k in expected}
            got = {k: normalized[k] for k in EXPECT_KEYS if k in expected}
            outcome.detail = [diff_text(shown, got, "expect", f"actual ({name})")]
    return outcome


def cross_check(outcomes: list[Outcome]) -> None:
    """Every binding that passed on its own must equal every other one that did."""
    passed = [o for o in outcomes if o.status == "PASS" and o.normalized is not None]
    forms = {o.binding: canonical(o.normalized) for o in passed}
    for outcome in passed:
        others = [o for o in passed if forms[o.binding] != forms[outcome.binding]]
        if not others:
            continue
        first = others[0]
        found = first_difference(
            first.normalized,
            outcome.normalized,
            labels=(f"{first.binding} has", f"{outcome.binding} has"),
        )
        names = ", ".join(o.binding for o in others)
        outcome.status = "FAIL"
        outcome.reason = f"differs from {names}; first difference at {found}"
        outcome.detail = [
            diff_text(
                first.normalized, outcome.normalized, first.binding, outcome.binding
            )
        ]


def print_outcome(out: TextIO, outcome: Outcome, scenario: str, verbose: bool) -> None:
    line = f"{outcome.status} {outcome.binding} {scenario}"
    if outcome.reason:
        line += f": {outcome.reason}"
    print(line, file=out)
    if verbose and outcome.status == "FAIL":
        for text in outcome.detail:
            for detail_line in text.splitlines():
                print("    " + detail_line, file=out)


def summary_line(passed: int, failed: int, skipped: int) -> str:
    line = f"parity: {passed} passed, {failed} failed"
    return line + (f", {skipped} skipped" if skipped else "")


def write_expect(
    path: Path, scenario: dict[str, Any], normalized: dict[str, Any]
) -> bool:
    """Write ``normalized`` into the scenario's expect, keeping the rest.

    Returns True when the file changed.
    """
    updated = copy.deepcopy(scenario)
    expect = updated.get("expect") if isinstance(updated.get("expect"), dict) else {}
    for key in EXPECT_KEYS:
        expect[key] = normalized[key]
    updated["expect"] = expect
    text = json.dumps(updated, indent=2, ensure_ascii=False) + "\n"
    old = path.read_text(encoding="utf-8")
    if text == old:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def _write_raw(out: TextIO, data: bytes) -> None:
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        out.flush()
        buffer.write(data)
        buffer.flush()
    else:
        out.write(data.decode("utf-8", "surrogateescape"))


def _find_scenario(text: str, scenarios: Path) -> Path:
    path = Path(text)
    if path.exists():
        return path.resolve()
    base = scenarios if scenarios.is_dir() else scenarios.parent
    for candidate in (base / text, base / f"{text}.json"):
        if candidate.exists():
            return candidate.resolve()
    return path.resolve()


def _parse_args(argv: list[str] | None, names: Iterable[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="driver.py",
        description="Run the Baton parity scenarios on every binding and compare them.",
    )
    parser.add_argument(
        "--scenarios",
        type=Path,
        default=DEFAULT_SCENARIOS,
        help="folder of *.json scenarios (or one scenario file); "
        "default tests/parity/scenarios",
    )
    parser.add_argument(
        "--bindings",
        help=f"comma-separated subset of {','.join(names)}; "
        "default every available one",
    )
    parser.add_argument(
        "--raw",
        nargs=2,
        metavar=("BINDING", "SCENARIO"),
        help="run one runner on one scenario (path or name); print its stdout as is",
    )
    parser.add_argument(
        "--bless",
        action="store_true",
        help="write the rust runner's normalized output into each scenario's expect",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=RUNNER_TIMEOUT,
        help=f"seconds per runner and scenario (default {RUNNER_TIMEOUT:g})",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print diffs on failure"
    )
    return parser.parse_args(argv)


def main(
    argv: list[str] | None = None,
    *,
    bindings: dict[str, Binding] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the driver and return the exit status.

    ``bindings`` replaces the BINDINGS table (tests register fake runners this way).
    """
    table = BINDINGS if bindings is None else bindings
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parse_args(argv, table)

    if args.raw:
        name, scenario_text = args.raw
        if name not in table:
            print(f"unknown binding {name} (known: {', '.join(table)})", file=err)
            return 2
        resolved = resolve(name, table)
        if not resolved.available:
            print(f"runner for {name} not found at {resolved.runner}", file=err)
            return 2
        path = _find_scenario(scenario_text, args.scenarios)
        result = run_command(resolved.argv(str(path)), args.timeout)
        _write_raw(out, result.stdout)
        if result.stderr:
            _write_raw(err, result.stderr)
        if result.error:
            print(f"driver: {result.error}", file=err)
            return 124 if result.timed_out else 127
        return result.returncode if result.returncode is not None else 1

    if args.bindings:
        requested = list(
            dict.fromkeys(b.strip() for b in args.bindings.split(",") if b.strip())
        )
        unknown = [b for b in requested if b not in table]
        if unknown:
            print(
                f"unknown binding(s) {', '.join(unknown)} (known: {', '.join(table)})",
                file=err,
            )
            return 2
    elif args.bless:
        requested = ["rust"]
    else:
        requested = [name for name in table if resolve(name, table).available]
        if not requested:
            print(
                "no binding runner found (build one, e.g. `cargo build --release -p "
                "baton-parity-rust`, or pass --bindings to require one)",
                file=err,
            )
    if args.bless and requested != ["rust"]:
        print("--bless runs only with the rust binding", file=err)
        return 2
    resolved_all = [resolve(name, table) for name in requested]
    if args.verbose:
        for r in resolved_all:
            state = "found" if r.available else "NOT FOUND"
            print(f"binding {r.name}: {r.runner} ({state})", file=err)

    files = scenario_files(args.scenarios)
    if not files:
        print(f"no scenarios in {args.scenarios}", file=err)
    passed = failed = skipped = 0
    for path in files:
        label = path.stem
        scenario, problem = load_scenario(path)
        if scenario is None:
            outcomes = [Outcome(r.name, "FAIL", problem or "") for r in resolved_all]
        else:
            if args.bless:  # run without expect: the output becomes the new expect
                unchecked = {k: v for k, v in scenario.items() if k != "expect"}
                outcomes = [
                    run_binding(r, path, unchecked, args.timeout) for r in resolved_all
                ]
                for outcome in outcomes:
                    if outcome.status == "PASS" and outcome.normalized is not None:
                        changed = write_expect(path, scenario, outcome.normalized)
                        outcome.reason = "blessed, " + (
                            "expect updated" if changed else "unchanged"
                        )
            else:
                outcomes = [
                    run_binding(r, path, scenario, args.timeout) for r in resolved_all
                ]
                cross_check(outcomes)
        for outcome in outcomes:
            print_outcome(out, outcome, label, args.verbose)
            if outcome.status == "PASS":
                passed += 1
            elif outcome.status == "FAIL":
                failed += 1
            else:
                skipped += 1
        out.flush()
    print(summary_line(passed, failed, skipped), file=out)
    out.flush()
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
