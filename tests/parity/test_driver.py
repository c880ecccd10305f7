"""Tests of the parity driver: validation, normalization, comparison and the CLI.

Run: python3 -m pytest tests/parity/test_driver.py -q
The runners here are fake Python scripts written into a temporary directory; nothing is
built.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid as uuidlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import driver

DRIVER = Path(driver.__file__).resolve()

# A fake runner. It reads the scenario's "fake" key (unknown top-level keys are ignored
# by the driver) and prints {"events", "results", "subscribers"}. Strings "uuid:NAME"
# become a fresh random UUID per run (the same NAME gives the same UUID within a run),
# and a timestamp "auto" becomes a real one, 10 us after the previous event's, so every
# run differs the way a real runtime's output does. "--mutate" adds a result (a binding
# that disagrees with the others).
FAKE_RUNNER = r"""
import json, sys, time, uuid
from datetime import datetime, timedelta, timezone

args = sys.argv[1:]
scenario = json.load(open(args[-1], encoding="utf-8"))
fake = scenario.get("fake", {})
if fake.get("stderr"):
    sys.stderr.write(fake["stderr"])
if fake.get("sleep"):
    time.sleep(fake["sleep"])
if "stdout" in fake:
    sys.stdout.write(fake["stdout"])
    sys.exit(fake.get("exit", 0))
ids = {}

def sub(value):
    if isinstance(value, str) and value.startswith("uuid:"):
        return ids.setdefault(value, str(uuid.uuid4()))
    if isinstance(value, list):
        return [sub(v) for v in value]
    if isinstance(value, dict):
        return {k: sub(v) for k, v in value.items()}
    return value

clock = datetime.now(timezone.utc)

def stamp(events):
    global clock
    for event in events:
        if event.get("timestamp") == "auto":
            clock += timedelta(microseconds=10)
            event["timestamp"] = clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return events

out = {
    "events": stamp(sub(fake.get("events", []))),
    "results": sub(fake.get("results", {})),
    "subscribers": {k: stamp(v) for k, v in sub(fake.get("subscribers", {})).items()},
}
if "--mutate" in args:
    out["results"]["mutated"] = True
print(json.dumps(out))
sys.exit(fake.get("exit", 0))
"""


# ------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------


def uid() -> str:
    return str(uuidlib.uuid4())


def scope(
    uuid: str,
    which: str,
    name: str = "s",
    parent: str | None = None,
    ts: object = "auto",
    **extra: object,
) -> dict:
    event = {
        "kind": "scope",
        "atof_version": "0.1",
        "uuid": uuid,
        "parent_uuid": parent,
        "timestamp": ts,
        "name": name,
        "scope_category": which,
        "category": "function",
        "attributes": [],
        "category_profile": None,
        "data": None,
        "data_schema": None,
        "metadata": {},
    }
    event.update(extra)
    return event


def mark(
    uuid: str,
    name: str = "m",
    parent: str | None = None,
    ts: object = "auto",
    **extra: object,
) -> dict:
    event = {
        "kind": "mark",
        "atof_version": "0.1",
        "uuid": uuid,
        "parent_uuid": parent,
        "timestamp": ts,
        "name": name,
        "data": None,
        "data_schema": None,
        "metadata": {},
    }
    event.update(extra)
    return event


TS0 = "2025-01-02T03:04:05.000001Z"
TS1 = "2025-01-02T03:04:05.000002Z"
TS2 = "2025-01-02T03:04:05.000003Z"


def stamped(events: list[dict]) -> list[dict]:
    """Give "auto" timestamps real, increasing values (for direct calls, no runner)."""
    out = []
    for index, event in enumerate(events):
        event = dict(event)
        if event["timestamp"] == "auto":
            event["timestamp"] = f"2025-01-02T03:04:05.{index * 10 + 1:06d}Z"
        out.append(event)
    return out


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BATON_PARITY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake_runner(tmp_path: Path) -> Path:
    path = tmp_path / "fake_runner.py"
    path.write_text(f"#!{sys.executable}\n{FAKE_RUNNER}", encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    return folder


def write_scenario(folder: Path, name: str, **body: object) -> Path:
    path = folder / f"{name}.json"
    path.write_text(
        json.dumps({"name": name, "steps": [], **body}, indent=2), encoding="utf-8"
    )
    return path


def fake_binding(runner: Path, *extra: str) -> driver.Binding:
    return driver.Binding(
        runner=lambda: runner,
        argv=lambda r, scenario: [sys.executable, str(r), *extra, scenario],
    )


def run_main(
    argv: list[str], bindings: dict | None = None
) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    status = driver.main(argv, bindings=bindings, out=out, err=err)
    return status, out.getvalue().splitlines(), err.getvalue()


BASIC_FAKE = {
    "events": [
        scope("uuid:a", "start", "agent"),
        mark("uuid:m", "note", "uuid:a", data={"n": 1.0}),
        scope("uuid:a", "end", "agent", metadata={"otel.status_code": "OK"}),
    ],
    "results": {"r": 2, "h": "<handle>"},
}
BASIC_EXPECT = {
    "events": [
        {k: v for k, v in scope("@1", "start", "agent").items() if k != "timestamp"},
        {
            k: v
            for k, v in mark("@2", "note", "@1", data={"n": 1}).items()
            if k != "timestamp"
        },
        {
            k: v
            for k, v in scope(
                "@1", "end", "agent", metadata={"otel.status_code": "OK"}
            ).items()
            if k != "timestamp"
        },
    ],
    "results": {"r": 2.0, "h": "<handle>"},
    "subscribers": {},
}


# ------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------


def test_valid_events_pass() -> None:
    a, m = uid(), uid()
    events = stamped([scope(a, "start"), mark(m, parent=a), scope(a, "end")])
    assert driver.validate_events(events) == []


def test_integer_epoch_microsecond_timestamps_are_accepted() -> None:
    a = uid()
    events = [scope(a, "start", ts=1_700_000_000_000_000), scope(a, "end", ts=TS0)]
    # TS0 (2025) is far after the integer start (2023).
    assert driver.validate_events(events) == []


@pytest.mark.parametrize(
    "bad",
    [
        "2025-01-02T03:04:05.00001Z",  # 5 fractional digits
        "2025-01-02T03:04:05.0000010Z",  # 7
        "2025-01-02T03:04:05.000001",  # no Z
        "2025-01-02T03:04:05.000001+00:00",
        "2025-01-02 03:04:05.000001Z",
        "2025-13-02T03:04:05.000001Z",  # month 13
        "2025-02-30T03:04:05.000001Z",  # no such day
        "\uff12\uff10\uff12\uff15-01-02T03:04:05.000001Z",  # fullwidth digits
        True,
        1.5,
        None,
    ],
)
def test_invalid_timestamp_is_rejected(bad: object) -> None:
    problems = driver.validate_events([mark(uid(), ts=bad)])
    assert len(problems) == 1
    assert problems[0].startswith("events[0]: timestamp")


def test_end_before_start_is_rejected() -> None:
    a = uid()
    problems = driver.validate_events(
        [scope(a, "end", ts=TS0), scope(a, "start", ts=TS1)]
    )
    assert problems == [f"events[0]: end of {a} without an earlier start"]


def test_end_less_than_one_microsecond_after_start_is_rejected() -> None:
    a = uid()
    problems = driver.validate_events(
        [scope(a, "start", ts=TS1), scope(a, "end", ts=TS1)]
    )
    assert len(problems) == 1 and "events[1]" in problems[0] and "1 us" in problems[0]
    problems = driver.validate_events(
        [scope(a, "start", ts=TS1), scope(a, "end", ts=TS0)]
    )
    assert len(problems) == 1 and "1 us" in problems[0]
    assert (
        driver.validate_events([scope(a, "start", ts=TS1), scope(a, "end", ts=TS2)])
        == []
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [("name", "other"), ("parent_uuid", str(uuidlib.uuid4())), ("category", "tool")],
)
def test_end_must_share_fields_with_its_start(key: str, value: object) -> None:
    a = uid()
    end = scope(a, "end", ts=TS1)
    end[key] = value
    problems = driver.validate_events([scope(a, "start", ts=TS0), end])
    assert len(problems) == 1
    assert problems[0].startswith(f"events[1]: end {key}")


def test_end_must_share_attributes_with_its_start() -> None:
    a = uid()
    start = scope(a, "start", ts=TS0, attributes=["parallel"])
    end = scope(a, "end", ts=TS1, attributes=["parallel", "remote"])
    problems = driver.validate_events([start, end])
    assert problems and problems[0].startswith("events[1]: end attributes")


def test_second_end_and_reused_uuid_are_rejected() -> None:
    a = uid()
    events = stamped([scope(a, "start"), scope(a, "end"), scope(a, "end")])
    assert driver.validate_events(events) == [f"events[2]: second end of {a}"]
    events = stamped([scope(a, "start"), mark(a)])
    assert driver.validate_events(events) == [
        f"events[1]: mark uuid {a} is already used"
    ]


@pytest.mark.parametrize(
    "attributes",
    [["remote", "parallel"], ["parallel", "parallel"], ["a", 1], "parallel"],
)
def test_unsorted_or_invalid_attributes_are_rejected(attributes: object) -> None:
    problems = driver.validate_events(
        [scope(uid(), "start", ts=TS0, attributes=attributes)]
    )
    assert len(problems) == 1
    assert problems[0].startswith("events[0]: attributes")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"kind": "span"}, "kind"),
        ({"atof_version": "0.2"}, "atof_version"),
        ({"uuid": "not-a-uuid"}, "uuid"),
        ({"uuid": "0123456789abcdef0123456789abcdef"}, "uuid"),
        ({"parent_uuid": "nope"}, "parent_uuid"),
        ({"name": 3}, "name"),
        ({"data_schema": {"name": "x"}}, "data_schema"),
        ({"data_schema": "x"}, "data_schema"),
        ({"metadata": None}, "metadata"),
        ({"scope_category": "middle"}, "scope_category"),
        ({"category": None}, "category"),
        ({"category_profile": []}, "category_profile"),
    ],
)
def test_field_types_are_checked(change: dict, fragment: str) -> None:
    event = scope(uid(), "start", ts=TS0)
    event.update(change)
    problems = driver.validate_events([event])
    assert len(problems) == 1
    assert problems[0].startswith(f"events[0]: {fragment}")


@pytest.mark.parametrize(
    "key", ["kind", "atof_version", "uuid", "parent_uuid", "timestamp", "name", "data",
            "data_schema", "metadata", "scope_category", "category", "attributes",
            "category_profile"]
)  # fmt: skip
def test_missing_required_keys_are_rejected(key: str) -> None:
    event = scope(uid(), "start", ts=TS0)
    del event[key]
    problems = driver.validate_events([event])
    assert problems and any(key in p for p in problems)


def test_marks_need_no_scope_keys_but_check_them_when_present() -> None:
    assert driver.validate_events([mark(uid(), ts=TS0)]) == []
    assert driver.validate_events([mark(uid(), ts=TS0, category="llm")]) == []
    assert (
        driver.validate_events([mark(uid(), ts=TS0, category_profile={"a": 1})]) == []
    )
    problems = driver.validate_events([mark(uid(), ts=TS0, scope_category="start")])
    assert problems == ["events[0]: a mark has scope_category"]
    assert (
        driver.validate_events(
            [mark(uid(), ts=TS0, data_schema={"name": "a", "version": "1"})]
        )
        == []
    )


def test_uppercase_uuids_are_uuids() -> None:
    a = uid().upper()
    assert driver.validate_events(stamped([scope(a, "start"), scope(a, "end")])) == []


def test_subscriber_lists_are_validated_too() -> None:
    a = uid()
    output = {
        "events": stamped([scope(a, "start"), scope(a, "end")]),
        "subscribers": {"audit": [scope(a, "start", ts=TS0, attributes=["b", "a"])]},
        "results": {},
    }
    problems = driver.validate_output(output)
    assert problems == [
        'subscribers.audit[0]: attributes ["b", "a"] are not sorted and de-duplicated'
    ]


def test_subscriber_may_see_an_end_whose_start_is_only_in_events() -> None:
    # A scope-local subscriber is registered after its scope started: it gets only the
    # end.
    a, b = uid(), uid()
    events = stamped([scope(a, "start"), scope(a, "end")])
    output = {"events": events, "subscribers": {"local": [events[1]]}, "results": {}}
    assert driver.validate_output(output) == []
    stray = scope(b, "end", ts=TS2)
    output = {"events": events, "subscribers": {"local": [stray]}, "results": {}}
    assert driver.validate_output(output) == [
        f"subscribers.local[0]: end of {b} without an earlier start"
    ]


def test_output_shape_is_checked() -> None:
    assert driver.validate_output([]) == ["output is not a JSON object"]
    assert driver.validate_output({"results": {}}) == ['output has no "events"']
    assert driver.validate_output({"events": [], "results": []}) == [
        "results is not an object"
    ]
    assert driver.validate_output({"events": [], "subscribers": []}) == [
        "subscribers is not an object"
    ]


def test_normalize_output_raises_naming_every_problem() -> None:
    a = uid()
    output = {"events": [scope(a, "end", ts=TS0), mark(uid(), ts="yesterday")]}
    with pytest.raises(driver.InvalidOutput) as info:
        driver.normalize_output(output)
    assert len(info.value.problems) == 2
    assert info.value.problems[0].startswith("events[0]: end of")
    assert info.value.problems[1].startswith("events[1]: timestamp")


# ------------------------------------------------------------------------------
# Normalization
# ------------------------------------------------------------------------------


def test_uuid_numbering_order() -> None:
    a, m, b, outside, x, y, w, z = (uid() for _ in range(8))
    output = {
        "events": stamped(
            [
                scope(a, "start"),
                mark(
                    m,
                    parent=a,
                    data={"scope": a.upper(), "message": f"scope {a} not found"},
                ),
                scope(
                    b, "start", parent=outside
                ),  # uuid before parent_uuid: b=@3, outside=@4
                scope(
                    b, "end", parent=outside, metadata={"ref": w}
                ),  # w seen only in results
                scope(a, "end"),
            ]
        ),
        # Dict order b_sub, a_sub; numbering scans subscribers in sorted name order.
        "subscribers": {
            "b_sub": stamped([mark(y, parent=x)]),
            "a_sub": stamped([mark(x, parent=a)]),
        },
        # Then results, in sorted key order: "a" (w) before "z" (z).
        "results": {"z": z, "a": [w, {"again": a}], "h": "<handle>"},
    }
    normalized = driver.normalize_output(output)
    events = normalized["events"]
    assert [(e["uuid"], e["parent_uuid"]) for e in events] == [
        ("@1", None),
        ("@2", "@1"),
        ("@3", "@4"),
        ("@3", "@4"),
        ("@1", None),
    ]
    assert events[1]["data"] == {"scope": "@1", "message": "scope @1 not found"}
    assert events[3]["metadata"] == {"ref": "@7"}
    assert [
        (e["uuid"], e["parent_uuid"]) for e in normalized["subscribers"]["a_sub"]
    ] == [("@5", "@1")]
    assert [
        (e["uuid"], e["parent_uuid"]) for e in normalized["subscribers"]["b_sub"]
    ] == [("@6", "@5")]
    assert normalized["results"] == {
        "z": "@8",
        "a": ["@7", {"again": "@1"}],
        "h": "<handle>",
    }
    assert all("timestamp" not in e for e in events)


def test_unseen_uuids_in_event_data_are_kept() -> None:
    literal = uid()
    normalized = driver.normalize_output(
        {"events": stamped([mark(uid(), data={"id": literal})]), "results": {}}
    )
    assert normalized["events"][0]["data"] == {"id": literal}


def test_uuid_keys_are_mapped() -> None:
    a = uid()
    normalized = driver.normalize_output(
        {"events": stamped([scope(a, "start")]), "results": {"r": {a: 1}}}
    )
    assert normalized["results"] == {"r": {"@1": 1}}


def test_trace_and_span_ids_and_traceparent() -> None:
    a = uid()
    trace, span = a.replace("-", ""), a.replace("-", "")[16:]
    output = {
        "events": stamped(
            [scope(a, "start"), mark(uid(), parent=a, data=f"00-{trace}-{span}-01")]
        ),
        "results": {
            "tp": f"00-{trace}-{span}-01",
            "trace": trace,
            "span": span,
            "ctx": {"version": 1, "root_uuid": a, "parent_uuid": a},
            "upper": trace.upper(),  # W3C ids are lowercase: not a trace id
            "short": span[:-1],
            "word": "deadbeef",
        },
    }
    normalized = driver.normalize_output(output)
    assert normalized["results"] == {
        "tp": "00-#trace-#span-01",
        "trace": "#trace",
        "span": "#span",
        "ctx": {"version": 1, "root_uuid": "@1", "parent_uuid": "@1"},
        "upper": trace.upper(),
        "short": span[:-1],
        "word": "deadbeef",
    }
    # The same rule applies in event data (a traceparent fed to a mark through $ref).
    assert normalized["events"][1]["data"] == "00-#trace-#span-01"


def test_exception_type_is_dropped_everywhere() -> None:
    a = uid()
    meta = {
        "otel.status_code": "ERROR",
        "error.type": "callback_failed",
        "exception.type": "X",
    }
    end = scope(a, "end", metadata=dict(meta))
    output = {
        "events": stamped([scope(a, "start"), end]),
        "subscribers": {"rec": stamped([scope(a, "start"), end])},
        # ATOF events read back from an exporter's file lose the same fields.
        "results": {"lines": [dict(end, timestamp=TS1)]},
    }
    normalized = driver.normalize_output(output)
    expected_meta = {"otel.status_code": "ERROR", "error.type": "callback_failed"}
    assert normalized["events"][1]["metadata"] == expected_meta
    assert normalized["subscribers"]["rec"][1]["metadata"] == expected_meta
    line = normalized["results"]["lines"][0]
    assert line["metadata"] == expected_meta
    assert "timestamp" not in line and line["uuid"] == "@1"


def test_numbers_compare_by_value() -> None:
    assert driver.normalize_numbers({"a": 1.0, "b": [2.5, 3.0, -0.0], "c": True}) == {
        "a": 1,
        "b": [2.5, 3, 0],
        "c": True,
    }
    assert isinstance(driver.normalize_numbers(1.0), int)
    assert driver.canonical({"x": 1, "y": [1e20]}) == driver.canonical(
        {"y": [10**20], "x": 1.0}
    )
    assert driver.canonical(True) != driver.canonical(1)
    assert driver.canonical(0.5) != driver.canonical(0)
    assert driver.compare({"results": {"x": 1}}, {"results": {"x": 1.0}}) is None
    assert driver.compare({"results": {"x": True}}, {"results": {"x": 1}}) is not None


def test_key_order_never_matters() -> None:
    assert (
        driver.compare({"results": {"a": 1, "b": 2}}, {"results": {"b": 2, "a": 1}})
        is None
    )


def test_compare_only_keys_present_in_expect() -> None:
    actual = {"events": [{"x": 1}], "results": {"r": 1}, "subscribers": {}}
    assert driver.compare({}, actual) is None
    assert driver.compare({"results": {"r": 1}}, actual) is None
    assert driver.compare({"events": []}, actual) == "events: expected 0 items, got 1"
    assert (
        driver.compare({"results": {"r": 2}}, actual) == "results.r: expected 2, got 1"
    )
    assert (
        driver.compare({"results": {}}, actual) == "results.r: expected nothing, got 1"
    )
    assert driver.compare({"subscribers": {"s": []}}, actual) == (
        "subscribers.s: expected [], got nothing"
    )


def test_normalize_output_is_independent_of_the_uuids_drawn() -> None:
    def run() -> dict:
        a, m = uid(), uid()
        return driver.normalize_output(
            {
                "events": stamped(
                    [scope(a, "start"), mark(m, parent=a), scope(a, "end")]
                ),
                "results": {"ctx": {"parent_uuid": a}},
            }
        )

    assert driver.canonical(run()) == driver.canonical(run())


# ------------------------------------------------------------------------------
# The CLI
# ------------------------------------------------------------------------------


def test_pass_and_closing_line(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    write_scenario(scenarios, "basic", fake=BASIC_FAKE, expect=BASIC_EXPECT)
    write_scenario(scenarios, "cross_only", fake=BASIC_FAKE)  # no expect
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bindings", "rust"])
    assert lines == [
        "PASS rust basic",
        "PASS rust cross_only",
        "parity: 2 passed, 0 failed",
    ]
    assert status == 0


def test_default_bindings_are_the_available_ones(
    fake_runner: Path, scenarios: Path, tmp_path: Path
) -> None:
    write_scenario(scenarios, "basic", fake=BASIC_FAKE, expect=BASIC_EXPECT)
    table = {
        "rust": fake_binding(fake_runner),
        "python": fake_binding(tmp_path / "missing" / "runner.py"),
    }
    status, lines, _ = run_main(["--scenarios", str(scenarios)], table)
    assert lines == ["PASS rust basic", "parity: 1 passed, 0 failed"]
    assert status == 0


def test_no_available_binding_is_a_failure(scenarios: Path, tmp_path: Path) -> None:
    write_scenario(scenarios, "basic", fake=BASIC_FAKE)
    table = {"rust": fake_binding(tmp_path / "nothing")}
    status, lines, err = run_main(["--scenarios", str(scenarios)], table)
    assert lines == ["parity: 0 passed, 0 failed"]
    assert status == 1
    assert "no binding runner found" in err


def test_requested_missing_runner_fails_every_scenario(
    fake_runner: Path, scenarios: Path, tmp_path: Path
) -> None:
    write_scenario(scenarios, "a", fake=BASIC_FAKE)
    write_scenario(scenarios, "b", fake=BASIC_FAKE, skip={"python": "not yet"})
    missing = tmp_path / "missing" / "runner.py"
    table = {"rust": fake_binding(fake_runner), "python": fake_binding(missing)}
    status, lines, _ = run_main(
        ["--scenarios", str(scenarios), "--bindings", "rust,python"], table
    )
    assert lines == [
        "PASS rust a",
        f"FAIL python a: runner for python not found at {missing}",
        "PASS rust b",
        f"FAIL python b: runner for python not found at {missing}",
        "parity: 2 passed, 2 failed",
    ]
    assert status == 1


def test_rust_runner_path_follows_cargo_target_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARGO_TARGET_DIR", "/tmp/somewhere")
    resolved = driver.resolve("rust", driver.BINDINGS)
    assert resolved.runner == Path("/tmp/somewhere/release/baton-parity-rust")
    assert resolved.argv("s.json") == [
        "/tmp/somewhere/release/baton-parity-rust",
        "s.json",
    ]
    monkeypatch.delenv("CARGO_TARGET_DIR")
    assert driver.resolve("rust", driver.BINDINGS).runner == (
        driver.REPO / "target" / "release" / "baton-parity-rust"
    )
    monkeypatch.setenv("BATON_PARITY_RUST", "/opt/runner")
    assert driver.resolve("rust", driver.BINDINGS).argv("s.json") == [
        "/opt/runner",
        "s.json",
    ]


def test_bindings_run_their_run_wrapper() -> None:
    assert list(driver.BINDINGS) == ["rust", "python", "node", "wasm", "go"]
    for name in ("python", "node", "wasm", "go"):
        wrapper = driver.PARITY_DIR / "runners" / name / "run"
        assert driver.resolve(name, driver.BINDINGS).argv("s.json") == [str(wrapper), "s.json"]


def test_skip_with_reason_and_skip_without_reason(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    write_scenario(scenarios, "a_ok", fake=BASIC_FAKE)
    write_scenario(
        scenarios, "b_skipped", fake=BASIC_FAKE, skip={"rust": "no threads here"}
    )
    write_scenario(scenarios, "c_empty", fake=BASIC_FAKE, skip={"rust": ""})
    write_scenario(scenarios, "d_blank", fake=BASIC_FAKE, skip={"rust": "  "})
    write_scenario(scenarios, "e_true", fake=BASIC_FAKE, skip={"rust": True})
    write_scenario(scenarios, "f_other", fake=BASIC_FAKE, skip={"wasm": "n/a"})
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bindings", "rust"])
    assert lines == [
        "PASS rust a_ok",
        "SKIP rust b_skipped: no threads here",
        "FAIL rust c_empty: skip of rust names no reason",
        "FAIL rust d_blank: skip of rust names no reason",
        "FAIL rust e_true: skip of rust names no reason",
        "PASS rust f_other",
        "parity: 2 passed, 3 failed, 1 skipped",
    ]
    assert status == 1


def test_skipped_count_and_exit_status(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    write_scenario(scenarios, "only", fake=BASIC_FAKE, skip={"rust": "reason"})
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bindings", "rust"])
    assert lines[-1] == "parity: 0 passed, 0 failed, 1 skipped"
    assert status == 1  # nothing passed
    write_scenario(scenarios, "other", fake=BASIC_FAKE)
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bindings", "rust"])
    assert lines[-1] == "parity: 1 passed, 0 failed, 1 skipped"
    assert status == 0


def test_summary_line_format() -> None:
    assert driver.summary_line(3, 0, 0) == "parity: 3 passed, 0 failed"
    assert driver.summary_line(3, 0, 1) == "parity: 3 passed, 0 failed, 1 skipped"


def test_expect_mismatch_fails_and_verbose_prints_a_diff(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    expect = json.loads(json.dumps(BASIC_EXPECT))
    expect["events"][1]["name"] = "other"
    write_scenario(scenarios, "basic", fake=BASIC_FAKE, expect=expect)
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bindings", "rust"])
    assert lines == [
        "FAIL rust basic: differs from expect at events[1].name: "
        'expected "other", got "note"',
        "parity: 0 passed, 1 failed",
    ]
    assert status == 1
    status, lines, _ = run_main(
        ["--scenarios", str(scenarios), "--bindings", "rust", "-v"]
    )
    text = "\n".join(lines)
    assert "--- expect" in text and "+++ actual (rust)" in text
    assert '-      "name": "other",' in text and '+      "name": "note",' in text


def test_invalid_events_from_a_runner_fail_naming_the_index(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    a = "uuid:a"
    fake = {
        "events": [
            scope(a, "start"),
            scope(a, "end", attributes=["z", "a"]),
            mark("uuid:m", ts="now"),
        ]
    }
    write_scenario(scenarios, "bad", fake=fake)
    status, lines, _ = run_main(
        ["--scenarios", str(scenarios), "--bindings", "rust", "-v"]
    )
    assert lines[0].startswith("FAIL rust bad: events[1]: attributes")
    assert lines[0].endswith("(+1 more)")
    assert any("events[2]: timestamp" in line for line in lines)
    assert status == 1


@pytest.mark.parametrize(
    ("fake", "reason"),
    [
        ({"stdout": "", "exit": 0}, "runner printed nothing"),
        ({"stdout": "hello\n"}, "stdout is not one JSON object"),
        (
            {"stdout": '{"events": []}\n{"events": []}\n'},
            "stdout is not one JSON object",
        ),
        ({"stdout": "[1, 2]"}, "stdout is not one JSON object"),
        (
            {
                "stdout": '{"events": []}',
                "exit": 3,
                "stderr": "line1\nstep 2 failed: boom\n",
            },
            "runner exited with status 3; stderr: line1 | step 2 failed: boom",
        ),
    ],
)
def test_runner_failures(
    fake_runner: Path,
    scenarios: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake: dict,
    reason: str,
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    write_scenario(scenarios, "broken", fake=fake)
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bindings", "rust"])
    assert lines[0].startswith(f"FAIL rust broken: {reason}")
    assert lines[-1] == "parity: 0 passed, 1 failed"
    assert status == 1


def test_runner_timeout(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    write_scenario(scenarios, "slow", fake={"sleep": 30, "stderr": "started\n"})
    status, lines, _ = run_main(
        ["--scenarios", str(scenarios), "--bindings", "rust", "--timeout", "1"]
    )
    assert lines[0] == "FAIL rust slow: timed out after 1 s; stderr: started"
    assert status == 1


def test_unreadable_scenario_fails(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    (scenarios / "broken.json").write_text("{not json", encoding="utf-8")
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bindings", "rust"])
    assert lines[0].startswith("FAIL rust broken: cannot read scenario:")
    assert status == 1


def test_unknown_binding_is_a_usage_error(scenarios: Path) -> None:
    status, lines, err = run_main(
        ["--scenarios", str(scenarios), "--bindings", "cobol"]
    )
    assert status == 2 and lines == [] and "unknown binding(s) cobol" in err


def test_cross_binding_mismatch_is_reported(fake_runner: Path, scenarios: Path) -> None:
    write_scenario(scenarios, "basic", fake=BASIC_FAKE)  # no expect: cross-binding only
    table = {
        "rust": fake_binding(fake_runner),
        "python": fake_binding(fake_runner),
        "node": fake_binding(fake_runner, "--mutate"),
    }
    status, lines, _ = run_main(["--scenarios", str(scenarios), "-v"], table)
    head = [line for line in lines if not line.startswith("    ")]
    assert head == [
        "FAIL rust basic: differs from node; first difference at results.mutated: "
        "node has true, rust has nothing",
        "FAIL python basic: differs from node; first difference at results.mutated: "
        "node has true, python has nothing",
        "FAIL node basic: differs from rust, python; first difference at "
        "results.mutated: rust has nothing, node has true",
        "parity: 0 passed, 3 failed",
    ]
    assert any(line == "    --- node" for line in lines)
    assert status == 1


def test_cross_binding_with_expect_blames_only_the_wrong_binding(
    fake_runner: Path, scenarios: Path
) -> None:
    expect = {"events": BASIC_EXPECT["events"], "results": BASIC_EXPECT["results"]}
    write_scenario(scenarios, "basic", fake=BASIC_FAKE, expect=expect)
    table = {
        "rust": fake_binding(fake_runner),
        "go": fake_binding(fake_runner, "--mutate"),
    }
    status, lines, _ = run_main(["--scenarios", str(scenarios)], table)
    assert lines == [
        "PASS rust basic",
        "FAIL go basic: differs from expect at results.mutated: "
        "expected nothing, got true",
        "parity: 1 passed, 1 failed",
    ]
    assert status == 1


def test_bindings_that_agree_pass(fake_runner: Path, scenarios: Path) -> None:
    write_scenario(scenarios, "basic", fake=BASIC_FAKE)
    table = {"rust": fake_binding(fake_runner), "wasm": fake_binding(fake_runner)}
    status, lines, _ = run_main(["--scenarios", str(scenarios)], table)
    assert lines == ["PASS rust basic", "PASS wasm basic", "parity: 2 passed, 0 failed"]
    assert status == 0


def test_raw_passes_stdout_through_unchanged(
    fake_runner: Path, scenarios: Path, tmp_path: Path
) -> None:
    stdout = '{"events": [],   "results": {"x": 1.0}}\n\n  trailing  \u00e9\n'
    path = write_scenario(scenarios, "raw", fake={"stdout": stdout, "exit": 3})
    env = {**os.environ, "BATON_PARITY_RUST": str(fake_runner)}
    for name in (str(path), "raw"):  # a path, or a name in --scenarios
        proc = subprocess.run(
            [
                sys.executable,
                str(DRIVER),
                "--scenarios",
                str(scenarios),
                "--raw",
                "rust",
                name,
            ],
            env=env,
            capture_output=True,
            cwd=tmp_path,
        )
        assert proc.stdout == stdout.encode("utf-8")
        assert proc.returncode == 3


def test_raw_with_missing_runner(scenarios: Path, tmp_path: Path) -> None:
    path = write_scenario(scenarios, "raw", fake=BASIC_FAKE)
    table = {"rust": fake_binding(tmp_path / "none")}
    status, lines, err = run_main(["--raw", "rust", str(path)], table)
    assert status == 2 and lines == []
    assert f"runner for rust not found at {tmp_path / 'none'}" in err


def test_bless_writes_expect_and_keeps_the_rest(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    path = scenarios / "basic.json"
    original = {
        "name": "basic",
        "description": "d",
        "steps": [{"op": "push", "name": "agent", "as": "a"}],
        "expect": {"note": "kept", "events": []},
        "fake": BASIC_FAKE,
        "zzz_unknown": 1,
    }
    path.write_text(json.dumps(original), encoding="utf-8")
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bless"])
    assert lines == [
        "PASS rust basic: blessed, expect updated",
        "parity: 1 passed, 0 failed",
    ]
    assert status == 0
    text = path.read_text(encoding="utf-8")
    blessed = json.loads(text)
    assert list(blessed) == list(original)
    assert list(blessed["expect"]) == ["note", "events", "results", "subscribers"]
    assert blessed["expect"]["note"] == "kept"
    assert driver.canonical(blessed["expect"]["events"]) == driver.canonical(
        BASIC_EXPECT["events"]
    )
    assert blessed["expect"]["results"] == {"r": 2, "h": "<handle>"}
    assert blessed["expect"]["subscribers"] == {}
    assert text == json.dumps(blessed, indent=2, ensure_ascii=False) + "\n"
    # Blessing again changes nothing; a normal run now passes.
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bless"])
    assert lines[0] == "PASS rust basic: blessed, unchanged"
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bindings", "rust"])
    assert lines == ["PASS rust basic", "parity: 1 passed, 0 failed"]


def test_bless_does_not_write_invalid_output(
    fake_runner: Path, scenarios: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_PARITY_RUST", str(fake_runner))
    path = write_scenario(scenarios, "bad", fake={"events": [mark("uuid:m", ts="now")]})
    before = path.read_text(encoding="utf-8")
    status, lines, _ = run_main(["--scenarios", str(scenarios), "--bless"])
    assert lines[0].startswith("FAIL rust bad: events[0]: timestamp")
    assert status == 1
    assert path.read_text(encoding="utf-8") == before


def test_bless_only_with_rust(scenarios: Path) -> None:
    status, _, err = run_main(
        ["--scenarios", str(scenarios), "--bless", "--bindings", "python"]
    )
    assert status == 2 and "only with the rust binding" in err
    status, _, err = run_main(
        ["--scenarios", str(scenarios), "--bless", "--bindings", "rust,python"]
    )
    assert status == 2


def test_relative_paths_work_from_any_directory(
    fake_runner: Path,
    scenarios: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Runners start in the repository root, so the driver hands them absolute paths.
    write_scenario(scenarios, "basic", fake=BASIC_FAKE, expect=BASIC_EXPECT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BATON_PARITY_RUST", fake_runner.name)
    status, lines, _ = run_main(["--scenarios", "scenarios", "--bindings", "rust"])
    assert lines == ["PASS rust basic", "parity: 1 passed, 0 failed"]
    assert status == 0


def test_timestamps_inside_results_become_a_placeholder() -> None:
    out = {
        "events": [],
        "results": {"doc": {"steps": [{"timestamp": "2026-11-21T20:41:02.123456Z", "message": "2026 was a year"}]}},
    }
    norm = driver.normalize_output(out)
    assert norm["results"]["doc"]["steps"][0] == {"timestamp": "#timestamp", "message": "2026 was a year"}
