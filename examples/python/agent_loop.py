"""A small agent loop instrumented end to end with Baton.

A scripted "model" decides which tools to call; Baton owns every boundary: the run and each
turn are scopes, model calls are managed LLM calls (one streamed), tools are managed tool
calls. Middleware shows the control points: a guardrail blocks a dangerous tool, a request
intercept adds a header, a retrying execution intercept hides a flaky tool's first failure,
and a sanitizer redacts an e-mail address from events (the tool still receives it). A
subscriber collects every event; the script prints them as a tree and writes ATOF JSONL.
A second run does the same with asyncio, with three agents in parallel.

    .venv/bin/python examples/python/agent_loop.py [--out DIR] [--quiet]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional

import baton

# ----- a scripted model and some tools ------------------------------------------------------------

SCRIPT: List[Dict[str, Any]] = [
    {
        "tool_calls": [
            {
                "id": "call-1",
                "name": "search",
                "arguments": {"query": "weather in Paris", "user": "ada@example.com"},
            }
        ]
    },
    {"tool_calls": [{"id": "call-2", "name": "flaky_forecast", "arguments": {"city": "Paris"}}]},
    {"tool_calls": [{"id": "call-3", "name": "delete_files", "arguments": {"path": "/"}}]},
    {"content": "It will be sunny in Paris tomorrow."},
]


def model(request: Dict[str, Any]) -> Dict[str, Any]:
    """A fake provider: returns the next scripted message, based on the conversation length."""
    turn = sum(1 for m in request["content"]["messages"] if m["role"] == "assistant")
    return SCRIPT[min(turn, len(SCRIPT) - 1)]


def stream_model(request: Dict[str, Any]) -> Iterator[Dict[str, str]]:
    for word in str(model(request).get("content", "")).split():
        yield {"delta": word + " "}


_flaky_calls = {"n": 0}
_flaky_lock = threading.Lock()


@baton.tool_fn()
def search(query: str, user: str) -> Dict[str, Any]:
    return {"results": [f"{query}: sunny, 24°C"], "for": user}


@baton.tool_fn()
def flaky_forecast(city: str) -> Dict[str, Any]:
    with _flaky_lock:
        _flaky_calls["n"] += 1
        if _flaky_calls["n"] % 2 == 1:
            raise ConnectionError("forecast service timed out")
    return {"city": city, "tomorrow": "sunny"}


@baton.tool_fn()
def delete_files(path: str) -> str:
    raise AssertionError("the guardrail must stop this tool")


TOOLS: Dict[str, Callable[..., Any]] = {
    "search": search,
    "flaky_forecast": flaky_forecast,
    "delete_files": delete_files,
}

# ----- middleware -----------------------------------------------------------------------------------

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def no_destructive_tools(info: baton.CallInfo, args: Any) -> Optional[str]:
    return "destructive tools are disabled" if info.name.startswith("delete_") else None


def add_tenant_header(info: baton.CallInfo, request: Any) -> Any:
    request["headers"]["x-tenant"] = "demo"
    return request


def retry_once(ctx: baton.CallContext, args: Any, next: baton.Next) -> Any:
    try:
        return next(args)
    except ConnectionError:
        ctx.queue_mark("retry", {"tool": ctx.name})
        return next(args)


def redact(info: baton.CallInfo, payload: Any) -> Any:
    return json.loads(EMAIL.sub("<redacted>", json.dumps(payload)))


def install(events: List[Dict[str, Any]]) -> None:
    baton.register("tool_conditional_execution", "no-destructive-tools", no_destructive_tools)
    baton.register("llm_request_intercept", "tenant-header", add_tenant_header)
    baton.register("tool_execution_intercept", "retry-once", retry_once)
    baton.register("tool_sanitize_request", "redact-email", redact)
    baton.register("tool_sanitize_response", "redact-email", redact)
    baton.register("llm_sanitize_request", "redact-email", redact)
    baton.register("llm_sanitize_response", "redact-email", redact)
    baton.subscribe("collect", lambda event: events.append(event.to_dict()))


# ----- the agent loop -------------------------------------------------------------------------------


def run_agent(question: str) -> str:
    messages: List[Dict[str, Any]] = [{"role": "user", "content": question}]
    with baton.scope("weather-agent", category="agent", input={"question": question}) as run:
        for turn in range(len(SCRIPT)):
            with baton.scope(f"turn-{turn}", category="function"):
                request = {
                    "headers": {"authorization": "Bearer sk-secret"},
                    "content": {"model": "scripted-1", "messages": messages},
                }
                reply = baton.llm("scripted.chat", request, model, model_name="scripted-1")
                messages.append({"role": "assistant", **reply})
                if "content" in reply:
                    # the final answer is also streamed, chunk by chunk
                    text = "".join(
                        c["delta"]
                        for c in baton.llm_stream(
                            "scripted.chat", request, stream_model, model_name="scripted-1"
                        )
                    )
                    run.output = {"answer": text.strip()}
                    return text.strip()
                for call in reply["tool_calls"]:
                    try:
                        result = TOOLS[call["name"]](**call["arguments"])
                    except baton.GuardrailRejected as e:
                        result = {"error": e.reason}
                    messages.append(
                        {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
                    )
    raise RuntimeError("the agent did not answer")


async def run_agent_async(question: str) -> str:
    async def model_async(request: Dict[str, Any]) -> Dict[str, Any]:
        await asyncio.sleep(0.001)  # the "network"
        return model(request)

    async def stream_async(request: Dict[str, Any]) -> AsyncIterator[Dict[str, str]]:
        for word in str(SCRIPT[-1]["content"]).split():
            await asyncio.sleep(0)
            yield {"delta": word + " "}

    async def search_async(args: Dict[str, Any]) -> Dict[str, Any]:
        await asyncio.sleep(0.001)
        return {"results": [f"{args['query']}: sunny"]}

    messages: List[Dict[str, Any]] = [{"role": "user", "content": question}]
    async with baton.scope("weather-agent-async", category="agent") as run:
        request = {"headers": {}, "content": {"model": "scripted-1", "messages": messages}}
        reply = await baton.llm_async("scripted.chat", request, model_async, model_name="scripted-1")
        call = reply["tool_calls"][0]
        await baton.tool_async(call["name"], call["arguments"], search_async, tool_call_id=call["id"])
        stream = await baton.llm_stream_async("scripted.chat", request, stream_async, model_name="scripted-1")
        text = "".join([c["delta"] async for c in stream]).strip()
        run.output = {"answer": text}
        return text


# ----- output ------------------------------------------------------------------------------------------


def tree(events: List[Dict[str, Any]]) -> List[str]:
    children: Dict[Optional[str], List[Dict[str, Any]]] = {}
    ends = {e["uuid"]: e for e in events if e.get("scope_category") == "end"}
    for e in events:
        if e["kind"] == "mark" or e.get("scope_category") == "start":
            children.setdefault(e["parent_uuid"], []).append(e)
    lines: List[str] = []

    def walk(parent: Optional[str], depth: int) -> None:
        for e in children.get(parent, []):
            if e["kind"] == "mark":
                lines.append(f"{'  ' * depth}· {e['name']} {json.dumps(e['data'])[:60]}")
                continue
            end = ends.get(e["uuid"], {})
            status = end.get("metadata", {}).get("otel.status_code", "open")
            lines.append(f"{'  ' * depth}{e['category']} {e['name']} [{status}]")
            walk(e["uuid"], depth + 1)

    walk(None, 0)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", default="out/python-example", help="folder for events.jsonl")
    ap.add_argument("--quiet", action="store_true", help="check the outcome, print nothing")
    args = ap.parse_args()

    events: List[Dict[str, Any]] = []
    install(events)
    answer = run_agent("What is the weather in Paris tomorrow?")

    async def parallel() -> List[str]:
        return list(await asyncio.gather(*(run_agent_async(f"question {i}") for i in range(3))))

    answers = asyncio.run(parallel())
    baton.flush()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))

    # What the run must show (the example doubles as a test).
    assert answer == "It will be sunny in Paris tomorrow.", answer
    assert answers == [answer] * 3, answers
    leaks = [e for e in events if "ada@example.com" in json.dumps(e) or "sk-secret" in json.dumps(e)]
    assert not leaks, leaks[:2]
    assert any(
        e["name"] == "no-destructive-tools"
        and e.get("data") == {"allowed": False, "reason": "destructive tools are disabled"}
        for e in events
    )
    assert any(e["name"] == "retry" for e in events)
    roots = [e for e in events if e.get("scope_category") == "start" and e["parent_uuid"] is None]
    assert [e["name"] for e in roots].count("weather-agent-async") == 3

    if not args.quiet:
        print("\n".join(tree(events)))
        print(f"\nanswer: {answer}\n{len(events)} events written to {out / 'events.jsonl'}")
    baton.shutdown()


if __name__ == "__main__":
    main()
