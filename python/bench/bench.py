"""`just bench-python`: Baton's Python binding against the reference runtime, in one run.

Runs python/bench/workloads.py once with this interpreter (Baton) and once with the
reference's venv (nemo-relay 0.10.4), then prints a Markdown table of medians (ns per call,
per chunk for streams), Baton's added cost over a plain Python call, and the reference/Baton
ratio. The reference's managed calls are asyncio-only, so its figures are compared with both
Baton's sync and asyncio forms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent


def run(python: str, which: str, scale: int) -> Dict[str, List[float]]:
    out = subprocess.run(
        [python, str(HERE / "workloads.py"), which, str(scale)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt(ns: Optional[float]) -> str:
    if ns is None:
        return "—"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1_000:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {load:.1f} at start"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", help="python of the venv where nemo-relay is installed")
    ap.add_argument("--scale", type=int, default=1, help="multiply iteration counts")
    args = ap.parse_args()

    print(f"machine: {machine()}", file=sys.stderr)
    b = run(sys.executable, "baton", args.scale)
    r = run(args.reference, "relay", args.scale) if args.reference else {}
    rows = [
        ("plain Python call (baseline)", "plain_call", None, "plain_call"),
        (
            "tool call, nothing registered",
            "tool_nothing_registered",
            "tool_async_nothing_registered",
            "tool_async_nothing_registered",
        ),
        (
            "tool call, one subscriber (flushed, incl.)",
            "tool_one_subscriber",
            "tool_async_one_subscriber",
            "tool_async_one_subscriber",
        ),
        (
            "guardrail + request + execution intercept + subscriber, all Python",
            "tool_full_chain",
            "tool_async_full_chain",
            "tool_async_full_chain",
        ),
        (
            "LLM stream, per chunk (one subscriber, flushed)",
            "llm_stream_per_chunk",
            "llm_stream_async_per_chunk",
            "llm_stream_async_per_chunk",
        ),
    ]
    for i, title in ((0, "wall-clock"), (1, "process CPU time (all threads)")):
        plain = b["plain_call"][i]
        print(f"\n**Medians, {title}**, ns per call (per chunk for streams)\n")
        print(
            "| workload | Baton sync | added over plain | Baton asyncio | reference (asyncio) | ref ÷ Baton sync | ref ÷ Baton asyncio |"
        )
        print("|---|---|---|---|---|---|---|")
        for label, sync_key, async_key, ref_key in rows:
            bs = b[sync_key][i] if sync_key in b else None
            ba = b[async_key][i] if async_key and async_key in b else None
            ref = r[ref_key][i] if ref_key in r else None
            base = sync_key == "plain_call"
            added = fmt(bs - plain) if bs is not None and not base else "—"
            ratio_s = f"{ref / bs:.0f}×" if ref and bs and not base else "—"
            ratio_a = f"{ref / ba:.0f}×" if ref and ba else "—"
            print(f"| {label} | {fmt(bs)} | {added} | {fmt(ba)} | {fmt(ref)} | {ratio_s} | {ratio_a} |")
    print()
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
