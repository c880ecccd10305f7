"""External validators over what Baton exports: every ATIF trajectory must pass Harbor's
TrajectoryValidator and the `atif` package's models, and every ATOF line must parse with
nvidia-nat-atif's ATOF 0.1 models.

The files come from `BATON_EXPORT_DIRS` (folders separated by ':'), written before this
runs by `just test-observability` (the demo and crates/core/examples/export_samples.rs).
"""

import json
import os
from pathlib import Path

import pytest

DIRS = [Path(d) for d in os.environ.get("BATON_EXPORT_DIRS", "").split(":") if d]


def files(pattern: str) -> list[Path]:
    found = sorted(p for d in DIRS for p in d.glob(pattern))
    return found


def test_there_is_something_to_validate() -> None:
    assert DIRS, "set BATON_EXPORT_DIRS"
    assert files("trajectory-*.json"), "no ATIF files were produced"
    assert files("*.jsonl"), "no ATOF files were produced"


@pytest.mark.parametrize("path", files("trajectory-*.json"), ids=lambda p: p.name)
def test_atif_passes_harbor_and_atif(path: Path) -> None:
    from atif import Trajectory
    from harbor.utils.trajectory_validator import TrajectoryValidator

    doc = json.loads(path.read_text())
    validator = TrajectoryValidator()
    assert validator.validate(doc), validator.get_errors()
    model = Trajectory.model_validate(doc)
    assert model.schema_version == "ATIF-v1.7"
    assert len(model.steps) == (model.final_metrics.total_steps if model.final_metrics else len(model.steps))


@pytest.mark.parametrize("path", files("*.jsonl"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_atof_lines_parse_as_atof_events(path: Path) -> None:
    from nat.atof import read_jsonl

    lines = [line for line in path.read_text().splitlines() if line.strip()]
    events = read_jsonl(path)
    assert len(events) == len(lines) > 0
    for raw, event in zip(lines, events):
        assert json.loads(raw)["uuid"] == str(event.uuid)


def test_samples_cover_every_provider_shape_and_the_hard_cases() -> None:
    samples = [json.loads(p.read_text()) for p in files("trajectory-*.json") if p.parent.name == "samples"]
    if not samples:
        pytest.skip("only the demo's folder was given")
    tokens = sorted(t["final_metrics"]["total_prompt_tokens"] for t in samples)
    # openai_chat 120, responses 80, anthropic 50+200+10, gemini 40 (each counted twice: agent + its subagent), idle 0
    assert tokens == [0, 80, 160, 240, 520], tokens
    messages = [s["message"] for t in samples for s in t["steps"]]
    assert any("rejected by a guardrail" in m for m in messages)
    assert any("LLM call failed: 503 from provider" in m for m in messages)
    assert all("secret" not in json.dumps(t) for t in samples)
