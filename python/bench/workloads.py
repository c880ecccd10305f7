"""Benchmark workloads, run by python/bench/bench.py in one interpreter per runtime.

``python workloads.py baton|relay`` prints one JSON object: for each workload, the median
nanoseconds per call (per chunk for streams) over several timed repetitions. The same
workloads are written against Baton (``baton``) and the reference runtime (``nemo_relay``),
each with the same Python callbacks doing the same (trivial) work.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any, Callable, Dict, List

ARGS = {"query": "weather in Paris", "limit": 3}
REPEATS = 7
CHUNKS = 200


def median_ns(run: Callable[[int], None], n: int, repeats: int = REPEATS) -> List[float]:
    """Medians of wall-clock and of process CPU time (all threads: the caller and the
    delivery thread), in ns per call. CPU time is the steadier figure on a busy machine."""
    run(max(1, n // 10))  # warm up
    wall: List[float] = []
    cpu: List[float] = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        run(n)
        wall.append((time.perf_counter_ns() - t0) / n)
        cpu.append((time.process_time_ns() - c0) / n)
    return [statistics.median(wall), statistics.median(cpu)]


def plain_call(n: int) -> None:
    def tool_impl(a: Any) -> Any:
        return a

    for _ in range(n):
        tool_impl(dict(ARGS))


# ----- Baton ---------------------------------------------------------------------------------------


def baton_workloads(scale: int) -> Dict[str, List[float]]:
    import baton

    out: Dict[str, List[float]] = {}
    cb = lambda a: a  # noqa: E731

    async def acb(a: Any) -> Any:
        return a

    def sync_calls(n: int) -> None:
        tool = baton.tool
        for _ in range(n):
            tool("search", ARGS, cb)

    def sync_calls_flushed(n: int) -> None:
        sync_calls(n)
        baton.flush(60.0)

    def async_calls_flushed(n: int) -> None:
        async def main() -> None:
            tool_async = baton.tool_async
            for _ in range(n):
                await tool_async("search", ARGS, acb)

        asyncio.run(main())
        baton.flush(60.0)

    out["plain_call"] = median_ns(plain_call, 200_000 * scale)
    out["tool_nothing_registered"] = median_ns(sync_calls, 100_000 * scale)
    out["tool_async_nothing_registered"] = median_ns(async_calls_flushed, 20_000 * scale)

    count = [0]

    def counter(_event: Dict[str, Any]) -> None:
        count[0] += 1

    baton.subscribe("bench.counter", counter)
    out["tool_one_subscriber"] = median_ns(sync_calls_flushed, 30_000 * scale)
    out["tool_async_one_subscriber"] = median_ns(async_calls_flushed, 20_000 * scale)

    baton.register("tool_conditional_execution", "bench.guard", lambda info, args: None)
    baton.register("tool_request_intercept", "bench.rewrite", lambda info, args: args)
    baton.register("tool_execution_intercept", "bench.around", lambda ctx, args, next: next(args))
    out["tool_full_chain"] = median_ns(sync_calls_flushed, 10_000 * scale)

    for kind, name in (
        ("tool_conditional_execution", "bench.guard"),
        ("tool_request_intercept", "bench.rewrite"),
        ("tool_execution_intercept", "bench.around"),
    ):
        baton.deregister(kind, name)

    async def aguard(info: Any, args: Any) -> None:
        return None

    async def arewrite(info: Any, args: Any) -> Any:
        return args

    async def around(ctx: Any, args: Any, next: Any) -> Any:
        return await next(args)

    baton.register("tool_conditional_execution", "bench.aguard", aguard)
    baton.register("tool_request_intercept", "bench.arewrite", arewrite)
    baton.register("tool_execution_intercept", "bench.around", around)
    out["tool_async_full_chain"] = median_ns(async_calls_flushed, 5_000 * scale)
    for kind, name in (
        ("tool_conditional_execution", "bench.aguard"),
        ("tool_request_intercept", "bench.arewrite"),
        ("tool_execution_intercept", "bench.around"),
    ):
        baton.deregister(kind, name)

    request = {"headers": {}, "content": {"model": "m", "messages": []}}
    chunks = [{"delta": f"w{i}"} for i in range(CHUNKS)]

    def stream(n: int) -> None:
        for _ in range(n // CHUNKS):
            for _c in baton.llm_stream("chat", request, lambda r: iter(chunks)):
                pass
        baton.flush(60.0)

    def stream_async(n: int) -> None:
        async def gen(_r: Any) -> Any:
            for c in chunks:
                yield c

        async def main() -> None:
            for _ in range(n // CHUNKS):
                s = await baton.llm_stream_async("chat", request, gen)
                async for _c in s:
                    pass

        asyncio.run(main())
        baton.flush(60.0)

    out["llm_stream_per_chunk"] = median_ns(stream, 20 * CHUNKS * scale)
    out["llm_stream_async_per_chunk"] = median_ns(stream_async, 10 * CHUNKS * scale)
    baton.deregister("subscriber", "bench.counter")
    return out


# ----- the reference: nemo_relay ---------------------------------------------------------------------


def relay_workloads(scale: int) -> Dict[str, List[float]]:
    import nemo_relay  # noqa: F401
    from nemo_relay import (
        LLMRequest,
        ToolExecutionInterceptOutcome,
        ToolExecutionResult,
        guardrails,
        intercepts,
        llm,
        subscribers,
        tools,
    )

    out: Dict[str, List[float]] = {}

    async def acb(a: Any) -> Any:
        return ToolExecutionResult(a)

    def async_calls_flushed(n: int) -> None:
        async def main() -> None:
            execute = tools.execute
            for _ in range(n):
                await execute("search", ARGS, acb)
            await subscribers.flush_async()

        asyncio.run(main())

    out["plain_call"] = median_ns(plain_call, 200_000 * scale)
    out["tool_async_nothing_registered"] = median_ns(async_calls_flushed, 1_000 * scale)

    count = [0]

    def counter(_event: Any) -> None:
        count[0] += 1

    subscribers.register("bench.counter", counter)
    out["tool_async_one_subscriber"] = median_ns(async_calls_flushed, 1_000 * scale)

    guardrails.register_tool_conditional_execution("bench.guard", 0, lambda name, args: None)
    intercepts.register_tool_request("bench.rewrite", 0, False, lambda name, args: args)

    async def around(ctx: Any, next_call: Any) -> Any:
        res = await next_call(ctx.args)
        return ToolExecutionInterceptOutcome(res.result)

    intercepts.register_tool_execution("bench.around", 0, around)
    out["tool_async_full_chain"] = median_ns(async_calls_flushed, 500 * scale)
    guardrails.deregister_tool_conditional_execution("bench.guard")
    intercepts.deregister_tool_request("bench.rewrite")
    intercepts.deregister_tool_execution("bench.around")

    chunks = [{"delta": f"w{i}"} for i in range(CHUNKS)]

    def stream_async(n: int) -> None:
        async def gen(_r: Any) -> Any:
            for c in chunks:
                yield c

        async def main() -> None:
            for _ in range(n // CHUNKS):
                got: List[Any] = []
                s = await llm.stream_execute(
                    "chat",
                    LLMRequest({}, {"model": "m", "messages": []}),
                    gen,
                    got.append,
                    lambda: {"n": len(got)},
                )
                async for _c in s:
                    pass
            await subscribers.flush_async()

        asyncio.run(main())

    out["llm_stream_async_per_chunk"] = median_ns(stream_async, 5 * CHUNKS * scale)
    subscribers.deregister("bench.counter")
    return out


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "baton"
    scale = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    results = baton_workloads(scale) if which == "baton" else relay_workloads(scale)
    print(json.dumps(results))
