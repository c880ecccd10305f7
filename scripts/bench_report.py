#!/usr/bin/env python3
"""Prints the criterion results of the last `cargo bench` as a Markdown table of medians.

Reads target/criterion/*/new/{benchmark,estimates}.json, so run it right after
`cargo bench -p baton --bench runtime` (the `just bench` recipe does both). Every figure is
shown against `baseline/plain_call` from the same run, and checked against the targets of the
core issue where one applies.
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRITERION = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"
BASELINE = "baseline/plain_call"
# benchmark id -> (target in ns, whether the target is on the added cost over the baseline)
TARGETS = {
    "tool/nothing_registered": (150.0, False),
    "tool/one_subscriber_incl_delivery": (1000.0, True),
}


def load() -> dict[str, dict]:
    results = {}
    for meta in CRITERION.glob("**/new/benchmark.json"):
        bench = json.loads(meta.read_text())
        est = json.loads((meta.parent / "estimates.json").read_text())
        results[bench["full_id"]] = est["median"]
    return results


def fmt_ns(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main() -> int:
    results = load()
    if BASELINE not in results:
        print(
            f"no criterion results with {BASELINE} under {CRITERION}; run `just bench` first",
            file=sys.stderr,
        )
        return 1
    base = results[BASELINE]["point_estimate"]
    print(
        "| benchmark | median | 95% CI of median | added over plain call | ratio | target |"
    )
    print("|---|---|---|---|---|---|")
    missed = 0
    for name in sorted(results, key=lambda n: (n != BASELINE, n)):
        m = results[name]
        med = m["point_estimate"]
        ci = m["confidence_interval"]
        target = ""
        if name in TARGETS:
            limit, on_added = TARGETS[name]
            value = med - base if on_added else med
            ok = value <= limit
            missed += not ok
            target = f"{'added ' if on_added else ''}≤ {fmt_ns(limit)}: {'met' if ok else 'MISSED'}"
        added = "—" if name == BASELINE else fmt_ns(med - base)
        print(
            f"| `{name}` | {fmt_ns(med)} | {fmt_ns(ci['lower_bound'])} – {fmt_ns(ci['upper_bound'])} | {added} | {med / base:.1f}× | {target} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
