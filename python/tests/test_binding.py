"""Binding concerns of the Python layer: value conversion, errors, handle lifetimes, the GIL,
asyncio, isolation through contextvars, plugins. Runtime semantics themselves are covered by
the parity suite (tests/parity)."""

from __future__ import annotations

import asyncio
import collections
import datetime
import enum
import gc
import json
import threading
import time
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional

import pytest
from conftest import Recorder

import baton
import baton.plugins

# ----- conversion -----------------------------------------------------------------------------


def test_plain_json_round_trips(rec: Recorder) -> None:
    value = {
        "s": "héllo ✓",
        "i": -(2**63),
        "u": 2**64 - 1,
        "f": 2.5,
        "b": True,
        "n": None,
        "l": [1, [2, {"x": False}]],
    }
    out = baton.tool("echo", value, lambda a: a)
    assert out == value
    assert type(out["i"]) is int and type(out["f"]) is float and out["b"] is True
    start = rec.by_name("echo")[0]
    assert start["data"] == value


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"when": datetime.datetime(2024, 1, 1)}, 'args["when"]: datetime is not JSON'),
        ({"a": [1, {2, 3}]}, 'args["a"][1]: set is not JSON'),
        ({"a": (1, 2)}, 'args["a"]: tuple is not JSON'),
        ({"x": float("nan")}, 'args["x"]: float NaN is not JSON'),
        ({"big": 2**70}, 'args["big"]: int out of the 64-bit range is not JSON'),
        ({1: "x"}, "args: dict key 1 (int) is not a string"),
        (object(), "args: object is not JSON"),
    ],
)
def test_non_json_args_are_rejected_with_their_path(args: Any, message: str) -> None:
    called = []
    with pytest.raises(baton.InvalidArgumentError) as info:
        baton.tool("t", args, lambda a: called.append(a))
    assert str(info.value) == message
    assert info.value.kind == "invalid_argument"
    assert isinstance(info.value, ValueError)
    assert called == []


def test_non_json_result_and_metadata_are_rejected(rec: Recorder) -> None:
    with pytest.raises(baton.InvalidArgumentError, match=r'result\["at"\]: date is not JSON'):
        baton.tool("t", {}, lambda a: {"at": datetime.date.today()})
    with pytest.raises(baton.InvalidArgumentError, match=r'metadata\["k"\]: bytes is not JSON'):
        baton.mark("m", metadata={"k": b"x"})
    # the failed tool call still ended, with the conversion error as its status
    end = [e for e in rec.by_name("t") if e.get("scope_category") == "end"][0]
    assert end["metadata"]["otel.status_code"] == "ERROR"
    assert end["metadata"]["error.type"] == "invalid_argument"


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


AWKWARD = {
    "z": 'q"\\ \n\t\r\b\f \x01\x1f\x7f é ✓ 😀',
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, Level.HIGH, True, False],
    "floats": [0.1, 1e16, 1e-7, -0.0, 2.5, 1.0, 1e300],
    "b": None,
    "a": {"y": [], "x": {}, "é": "", "E": "", "aa": {"b": 1, "a": 2}},
    "o": collections.OrderedDict([("k2", 2), ("k1", 1)]),
    Color.RED: Color.RED,
}


def test_host_path_writes_the_payload_text_of_the_value_path(rec: Recorder, names: List[str]) -> None:
    # Subscribers only: the events' JSON text is written straight from the Python objects.
    # With a request intercept the args go through JSON values: the text must be the same.
    assert baton.tool("direct", AWKWARD, lambda a: a) is AWKWARD
    names.append("test.identity")
    baton.register("tool_request_intercept", "test.identity", lambda info, a: a)
    baton.tool("via_values", AWKWARD, lambda a: a)
    direct, via = rec.by_name("direct"), rec.by_name("via_values")
    for i in (0, 1):
        assert json.loads(direct[i].to_json())["data"] == json.loads(via[i].to_json())["data"]
        assert direct[i].to_json().split('"data":')[1] == via[i].to_json().split('"data":')[1]
    assert direct[0]["data"]["z"] == AWKWARD["z"]


@pytest.mark.parametrize("path", ["unobserved", "host", "values"])
def test_every_path_rejects_non_json_with_the_path(path: str) -> None:
    # nothing registered / subscribers only (objects pass through) / middleware (JSON values)
    observed = path != "unobserved"
    r = Recorder()
    if observed:
        baton.subscribe(r.name, r)
    if path == "values":
        baton.register("tool_request_intercept", "test.values", lambda info, a: a)
    try:
        with pytest.raises(baton.InvalidArgumentError, match=r'^args\["a"\]\[1\]\["k"\]: bytes is not JSON$'):
            baton.tool("t", {"a": [1, {"k": b"x"}]}, lambda a: a)
        with pytest.raises(baton.InvalidArgumentError, match=r"^result\[0\]: float inf is not JSON$"):
            baton.tool("t", {}, lambda a: [float("inf")])
        loop: List[Any] = []
        loop.append(loop)
        with pytest.raises(
            baton.InvalidArgumentError, match=r"^args(\[0\]){201}: nesting deeper than 200 levels"
        ):
            baton.tool("t", loop, lambda a: a)
    finally:
        if observed:
            baton.flush(10.0)
            baton.deregister("subscriber", r.name)
        baton.deregister("tool_request_intercept", "test.values")
    if observed:
        ends = [e for e in r.events if e["name"] == "t" and e.get("scope_category") == "end"]
        assert len(ends) == 1 and ends[0]["metadata"]["error.type"] == "invalid_argument"


# ----- errors ----------------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_callback_exception_is_the_same_object_and_describes_the_event(rec: Recorder) -> None:
    err = Boom("disk on fire")

    def fail(_a: Any) -> Any:
        raise err

    with pytest.raises(Boom) as info:
        baton.tool("burn", {}, fail)
    assert info.value is err
    end = [e for e in rec.by_name("burn") if e.get("scope_category") == "end"][0]
    assert end["metadata"]["otel.status_description"] == "disk on fire"
    assert end["metadata"]["error.type"] == "callback_failed"
    assert end["metadata"]["exception.type"] == "Boom"


def test_exception_passes_through_an_execution_intercept_unchanged(rec: Recorder, names: List[str]) -> None:
    err = Boom("inner")
    seen: List[BaseException] = []

    def intercept(ctx: baton.CallContext, args: Any, next: baton.Next) -> Any:
        try:
            return next(args)
        except Boom as e:
            seen.append(e)
            raise

    names.append("pass-through")
    baton.register("tool_execution_intercept", "pass-through", intercept)

    def fail(_a: Any) -> Any:
        raise err

    with pytest.raises(Boom) as info:
        baton.tool("t", {}, fail)
    assert info.value is err and seen == [err]


def test_baton_error_raised_by_a_callback_keeps_its_kind(rec: Recorder) -> None:
    def fail(_a: Any) -> Any:
        raise baton.UpstreamError("provider down")

    with pytest.raises(baton.UpstreamError):
        baton.tool("up", {}, fail)
    end = [e for e in rec.by_name("up") if e.get("scope_category") == "end"][0]
    assert end["metadata"]["error.type"] == "upstream"


def test_every_kind_has_a_subclass() -> None:
    from baton._errors import _BY_KIND

    assert sorted(_BY_KIND) == sorted(baton._native.ERROR_KINDS)
    for kind, cls in _BY_KIND.items():
        assert issubclass(cls, baton.BatonError) and cls.kind == kind


def test_guardrail_rejection_carries_reason_and_name(rec: Recorder, names: List[str]) -> None:
    names.append("no-rm")
    baton.register(
        "tool_conditional_execution",
        "no-rm",
        lambda info, args: "rm is not allowed" if info.name == "rm" else None,
    )
    with pytest.raises(baton.GuardrailRejected) as info:
        baton.tool("rm", {"path": "/"}, lambda a: pytest.fail("must not run"))
    assert info.value.reason == "rm is not allowed"
    assert info.value.guardrail == "no-rm"
    assert info.value.kind == "guardrail_rejected"
    assert baton.tool("ls", {}, lambda a: "ok") == "ok"


def test_registration_and_scope_errors() -> None:
    baton.register("tool_sanitize_request", "dup", lambda info, v: v)
    try:
        with pytest.raises(baton.AlreadyExistsError):
            baton.register("tool_sanitize_request", "dup", lambda info, v: v)
    finally:
        assert baton.deregister("tool_sanitize_request", "dup") is True
    assert baton.deregister("tool_sanitize_request", "dup") is False
    with pytest.raises(baton.InvalidArgumentError, match="unknown middleware kind"):
        baton.register("nope", "x", lambda: None)
    with pytest.raises(baton.InvalidArgumentError, match="plain function"):

        async def sub(_e: Dict[str, Any]) -> None: ...

        baton.register("subscriber", "async-sub", sub)
    s = baton.push("once")
    baton.pop(s)
    assert s.is_ended
    with pytest.raises(baton.NotFoundError):
        baton.pop(s)


# ----- scopes and lifetimes ----------------------------------------------------------------------


def test_scope_context_manager_decorator_and_errors(rec: Recorder) -> None:
    @baton.scope("step", category="function")
    def step(x: int) -> int:
        baton.mark("inside", {"x": x})
        return x * 2

    with baton.scope("agent", category="agent", input={"q": 1}) as agent:
        assert step(2) == 4
        agent.output = {"done": True}
    with pytest.raises(Boom):
        with baton.scope("broken"):
            raise Boom("no")
    events = rec.flushed()
    by = {(e["name"], e.get("scope_category")): e for e in events}
    assert by[("step", "start")]["parent_uuid"] == agent.uuid
    assert by[("inside", None)]["parent_uuid"] == by[("step", "start")]["uuid"]
    assert by[("agent", "end")]["data"] == {"done": True}
    assert by[("broken", "end")]["metadata"]["otel.status_code"] == "ERROR"
    assert by[("broken", "end")]["metadata"]["otel.status_description"] == "no"


def test_next_is_only_valid_while_the_intercept_runs(names: List[str], rec: Recorder) -> None:
    kept: List[baton.Next] = []

    def intercept(ctx: baton.CallContext, args: Any, next: baton.Next) -> Any:
        kept.append(next)
        return next(args)

    names.append("keep-next")
    baton.register("tool_execution_intercept", "keep-next", intercept)
    assert baton.tool("t", {"a": 1}, lambda a: a) == {"a": 1}
    with pytest.raises(baton.InvalidStateError, match="after its execution intercept returned"):
        kept[0]({"a": 2})


def test_manual_handles_end_once(rec: Recorder) -> None:
    h = baton.tool_start("search", {"q": "x"}, tool_call_id="c1")
    baton.tool_end(h, {"hits": 1})
    with pytest.raises(baton.NotFoundError):
        baton.tool_end(h, {"hits": 2})
    start, end = rec.by_name("search")
    assert start["category_profile"] == {"tool_call_id": "c1"} and end["data"] == {"hits": 1}


def test_streams_are_lazy_and_closing_early_cancels(rec: Recorder) -> None:
    produced: List[int] = []

    def chunks(_req: Any) -> Iterator[Dict[str, int]]:
        for i in range(5):
            produced.append(i)
            yield {"i": i}

    stream = baton.llm_stream("gen", {"content": "hi"}, chunks)
    assert produced == []
    assert next(stream) == {"i": 0} and produced == [0]
    assert next(stream) == {"i": 1} and produced == [0, 1]
    stream.close()
    end = [e for e in rec.by_name("gen") if e.get("scope_category") == "end"][0]
    assert end["metadata"]["error.type"] == "cancelled"
    assert produced == [0, 1]


@pytest.mark.parametrize("form", ["sync", "async"])
def test_host_run_llm(rec: Recorder, names: List[str], form: str) -> None:
    # Subscribers only: the callback runs on the caller's own request (a copy with `headers`
    # added when it had none) and the caller gets the callback's own response; the events are
    # those of the value path (an identity request intercept forces it), credentials stripped.
    oops = Oops("provider down")
    seen: List[Any] = []

    def respond(req: Any) -> Any:
        seen.append(req)
        baton.mark("inside")
        if req["content"] == "fail":
            raise oops
        if req["content"] == "bad":
            return {"at": datetime.date.today()}
        return {"text": "ok", "echo": req["content"]}

    async def arespond(req: Any) -> Any:
        await asyncio.sleep(0)
        return respond(req)

    async def call(name: str, request: Any) -> Any:
        if form == "sync":
            return baton.llm(name, request, respond, model_name="m")
        return await baton.llm_async(name, request, arespond, model_name="m")

    async def main() -> List[Any]:
        with_headers = {"headers": {"Authorization": "Bearer s3cret", "x-trace": "t"}, "content": "hi"}
        bare = {"content": "hi"}
        out = [await call("own", with_headers)]
        assert seen[-1] is with_headers
        out.append(await call("added", bare))
        assert seen[-1] == {"content": "hi", "headers": {}} and bare == {"content": "hi"}
        with pytest.raises(Oops) as info:
            await call("failing", {"content": "fail"})
        assert info.value is oops
        with pytest.raises(baton.InvalidArgumentError, match=r'^result\["at"\]: date is not JSON$'):
            await call("bad", {"content": "bad"})
        names.append("test.identity")
        baton.register("llm_request_intercept", "test.identity", lambda info, r: r)
        out.append(await call("values", with_headers))
        return out

    own, added, values = asyncio.run(main())
    assert own == added == values == {"text": "ok", "echo": "hi"}
    host_start, host_end = rec.by_name("own")
    value_start, value_end = rec.by_name("values")
    assert host_start["data"] == value_start["data"] == {"headers": {"x-trace": "t"}, "content": "hi"}
    assert host_end["data"] == value_end["data"]
    assert host_start["category_profile"] == value_start["category_profile"] == {"model_name": "m"}
    inside = rec.by_name("inside")
    assert inside[0]["parent_uuid"] == host_start["uuid"]
    fail_end = rec.by_name("failing")[1]
    assert fail_end["metadata"]["otel.status_code"] == "ERROR"
    assert rec.by_name("bad")[1]["metadata"]["error.type"] == "invalid_argument"


@pytest.mark.parametrize("form", ["sync", "async"])
def test_host_run_streams(rec: Recorder, form: str) -> None:
    # Subscribers only: the stream pulls the source itself. Chunks are the source's own
    # objects; work done while producing one is parented under the call; the callback sees
    # the request with headers added; errors end the stream and reach the consumer unchanged.
    chunks = [{"d": "a"}, None, ["b", 1.5]]
    seen: List[Any] = []
    oops = Oops("mid-stream")

    def source(req: Any) -> Iterator[Any]:
        seen.append(req)
        for c in chunks:
            baton.mark("producing")
            yield c

    async def asource(req: Any) -> AsyncIterator[Any]:
        for c in source(req):
            await asyncio.sleep(0)
            yield c

    def failing(_req: Any) -> Iterator[Any]:
        yield {"ok": 1}
        raise oops

    async def afailing(req: Any) -> AsyncIterator[Any]:
        for c in failing(req):
            yield c

    def bad_chunk(_req: Any) -> Iterator[Any]:
        yield {"when": datetime.date.today()}

    async def abad_chunk(req: Any) -> AsyncIterator[Any]:
        for c in bad_chunk(req):
            yield c

    async def consume(name: str, fn: Any) -> List[Any]:
        if form == "sync":
            return list(baton.llm_stream(name, {"content": "hi"}, fn))
        return [c async for c in await baton.llm_stream_async(name, {"content": "hi"}, fn)]

    async def main() -> None:
        got = await consume("chat", source if form == "sync" else asource)
        assert got == chunks and all(g is c for g, c in zip(got, chunks))
        assert seen[0] == {"content": "hi", "headers": {}}
        with pytest.raises(Oops) as info:
            await consume("failing", failing if form == "sync" else afailing)
        assert info.value is oops
        with pytest.raises(baton.InvalidArgumentError, match=r'^chunk\["when"\]: date is not JSON$'):
            await consume("bad", bad_chunk if form == "sync" else abad_chunk)

    asyncio.run(main())
    start, end = rec.by_name("chat")
    assert [e["parent_uuid"] for e in rec.by_name("producing")] == [start["uuid"]] * 3
    marks = [e for e in rec.by_name("llm.chunk") if e["parent_uuid"] == start["uuid"]]
    assert [m["data"] for m in marks] == chunks
    assert [m["metadata"]["llm.chunk.index"] for m in marks] == [0, 1, 2]
    assert end["data"] == chunks
    fail_end = rec.by_name("failing")[1]
    assert fail_end["metadata"]["otel.status_description"] == "mid-stream"
    assert rec.by_name("bad")[1]["metadata"]["error.type"] == "invalid_argument"


# ----- asyncio -----------------------------------------------------------------------------------


def test_async_callbacks_middleware_and_streams(rec: Recorder, names: List[str]) -> None:
    async def guard(info: baton.CallInfo, args: Any) -> Optional[str]:
        await asyncio.sleep(0.001)
        return None

    async def rewrite(info: baton.CallInfo, args: Any) -> Any:
        await asyncio.sleep(0.001)
        return {**args, "rewritten": True}

    async def around(ctx: baton.CallContext, args: Any, next: baton.AsyncNext) -> Any:
        first = await next(args)
        await asyncio.sleep(0.001)
        return {"wrapped": first}

    names.extend(["a-guard", "a-rewrite", "a-around"])
    baton.register("tool_conditional_execution", "a-guard", guard)
    baton.register("tool_request_intercept", "a-rewrite", rewrite)
    baton.register("tool_execution_intercept", "a-around", around)

    async def fetch(args: Any) -> Any:
        await asyncio.sleep(0.001)
        baton.mark("fetched")
        return args

    async def gen(_req: Any) -> AsyncIterator[str]:
        for w in ("a", "b", "c"):
            await asyncio.sleep(0)
            yield w

    async def main() -> Any:
        out = await baton.tool_async("fetch", {"url": "x"}, fetch)
        stream = await baton.llm_stream_async("chat", {"content": "hi"}, gen)
        words = [w async for w in stream]
        return out, words

    out, words = asyncio.run(main())
    assert out == {"wrapped": {"url": "x", "rewritten": True}}
    assert words == ["a", "b", "c"]
    tool_start = [e for e in rec.by_name("fetch") if e["scope_category"] == "start"][0]
    assert rec.by_name("fetched")[0]["parent_uuid"] == tool_start["uuid"]
    assert [e["data"] for e in rec.by_name("llm.chunk")] == ["a", "b", "c"]


def test_sync_call_runs_async_middleware_without_a_loop(names: List[str]) -> None:
    async def guard(info: baton.CallInfo, args: Any) -> Any:
        await asyncio.sleep(0.001)
        return "no" if args.get("deny") else True

    names.append("sync-async-guard")
    baton.register("tool_conditional_execution", "sync-async-guard", guard)
    assert baton.tool("t", {"deny": False}, lambda a: 1) == 1
    with pytest.raises(baton.GuardrailRejected):
        baton.tool("t", {"deny": True}, lambda a: 1)


def test_cancelling_an_async_call_ends_it_as_cancelled(rec: Recorder) -> None:
    async def slow(_a: Any) -> Any:
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.ensure_future(baton.tool_async("slow", {}, slow))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    end = [e for e in rec.by_name("slow") if e.get("scope_category") == "end"][0]
    assert end["metadata"]["error.type"] == "cancelled"


def test_cancelling_an_async_stream_mid_pull_ends_it_as_cancelled(rec: Recorder) -> None:
    async def gen(_req: Any) -> AsyncIterator[Dict[str, int]]:
        yield {"i": 0}
        await asyncio.sleep(10)
        yield {"i": 1}

    got: List[Any] = []

    async def consume() -> None:
        async for c in await baton.llm_stream_async("slow-stream", {"content": "hi"}, gen):
            got.append(c)

    async def main() -> None:
        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert got == [{"i": 0}]
    start, end = rec.by_name("slow-stream")
    assert end["metadata"]["error.type"] == "cancelled"
    marks = [e for e in rec.by_name("llm.chunk") if e["parent_uuid"] == start["uuid"]]
    assert [m["data"] for m in marks] == [{"i": 0}]


def test_leaving_an_async_stream_early_then_closing_cancels(rec: Recorder) -> None:
    produced: List[int] = []

    async def gen(_req: Any) -> AsyncIterator[Dict[str, int]]:
        for i in range(5):
            produced.append(i)
            await asyncio.sleep(0)
            yield {"i": i}

    async def main() -> None:
        stream = await baton.llm_stream_async("early", {"content": "hi"}, gen)
        async for c in stream:
            assert c == {"i": 0}
            break
        stream.close()
        assert [c async for c in stream] == []

    asyncio.run(main())
    assert produced == [0]
    end = [e for e in rec.by_name("early") if e.get("scope_category") == "end"][0]
    assert end["metadata"]["error.type"] == "cancelled"


def test_async_middleware_that_suspends_can_be_cancelled_or_fail(names: List[str], rec: Recorder) -> None:
    boom = Oops("after the call")

    async def around(ctx: baton.CallContext, args: Any, next: baton.AsyncNext) -> Any:
        result = await next(args)
        await asyncio.sleep(10 if args.get("slow") else 0)
        if args.get("fail"):
            raise boom
        return result

    async def guard(info: baton.CallInfo, args: Any) -> None:
        try:
            baton.mark("from-guard")
            await baton.tool_async("nested", {}, lambda a: a)
        except baton.InvalidStateError:
            baton.mark("nested-refused")

    names.extend(["susp-around", "susp-guard"])
    baton.register("tool_execution_intercept", "susp-around", around)
    baton.register("tool_conditional_execution", "susp-guard", guard)

    async def cb(a: Any) -> Any:
        await asyncio.sleep(0)
        return {"ok": True}

    async def main() -> None:
        assert await baton.tool_async("fine", {}, cb) == {"ok": True}
        with pytest.raises(Oops) as info:
            await baton.tool_async("failing", {"fail": True}, cb)
        assert info.value is boom
        task = asyncio.ensure_future(baton.tool_async("slow", {"slow": True}, cb))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert rec.by_name("fine")[1]["data"] == {"ok": True}
    assert rec.by_name("failing")[1]["metadata"]["otel.status_description"] == "after the call"
    assert rec.by_name("slow")[1]["metadata"]["error.type"] == "cancelled"
    assert len(rec.by_name("nested-refused")) == 3 and rec.by_name("nested") == []


@pytest.mark.parametrize("form", ["sync", "async"])
def test_values_handed_back_changed_in_place_are_seen(form: str, names: List[str], rec: Recorder) -> None:
    # A middleware or callback returning the very object it got, but changed, is converted again.
    def rewrite(info: baton.CallInfo, args: Any) -> Any:
        args["rewritten"] = True
        return args

    async def arewrite(info: baton.CallInfo, args: Any) -> Any:
        return rewrite(info, args)

    async def around(ctx: baton.CallContext, args: Any, next: baton.AsyncNext) -> Any:
        args["around"] = [1, 2.5]
        return await next(args)

    def sync_around(ctx: baton.CallContext, args: Any, next: baton.Next) -> Any:
        args["around"] = [1, 2.5]
        return next(args)

    names.extend(["inplace-rewrite", "inplace-around"])
    baton.register("tool_request_intercept", "inplace-rewrite", arewrite if form == "async" else rewrite)
    baton.register("tool_execution_intercept", "inplace-around", around if form == "async" else sync_around)
    seen: List[Any] = []

    def cb(args: Any) -> Any:
        seen.append(dict(args))
        args["by_callback"] = "yes"
        return args

    async def acb(args: Any) -> Any:
        return cb(args)

    if form == "async":
        out = asyncio.run(baton.tool_async("inplace", {"q": 1}, acb))
    else:
        out = baton.tool("inplace", {"q": 1}, cb)
    assert seen == [{"q": 1, "rewritten": True, "around": [1, 2.5]}]
    assert out == {"q": 1, "rewritten": True, "around": [1, 2.5], "by_callback": "yes"}
    assert rec.by_name("inplace")[1]["data"] == out


def test_events_kept_or_not_by_a_subscriber_keep_their_own_content(names: List[str]) -> None:
    # Event objects a subscriber does not keep are reused for later events; kept ones never are.
    kept: List[baton.Event] = []
    seen: List[Dict[str, Any]] = []
    read: List[str] = []

    def sub(event: baton.Event) -> None:
        read.append(event.name)
        if event.name.endswith("0"):
            seen.append(event.to_dict())  # read (its dict built), then not kept
        if event.name.endswith("5"):
            kept.append(event)

    names.append("keeping-sub")
    baton.subscribe("keeping-sub", sub)
    for i in range(40):
        baton.mark(f"m{i}", {"i": i})
    assert baton.flush(10.0)
    assert read == [f"m{i}" for i in range(40)]
    assert [e["data"] for e in seen] == [{"i": i} for i in range(0, 40, 10)]
    assert [(e.name, e["data"]) for e in kept] == [(f"m{i}", {"i": i}) for i in range(5, 40, 10)]
    assert len({id(e) for e in kept}) == 4


def test_an_abandoned_async_call_in_a_cycle_is_collected(names: List[str], rec: Recorder) -> None:
    # A task left pending forever, in a reference cycle through the awaiting frames (the
    # middleware keeps its own task): the cycle collector frees it, and the call ends.
    async def around(ctx: baton.CallContext, args: Any, next: baton.AsyncNext) -> Any:
        me = asyncio.current_task()
        await asyncio.get_running_loop().create_future()  # never resolved
        return me

    names.append("abandoning-around")
    baton.register("tool_execution_intercept", "abandoning-around", around)

    async def cb(a: Any) -> Any:
        return a

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: None)  # "Task was destroyed but it is pending!"
    task = loop.create_task(baton.tool_async("abandoned", {}, cb))
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()
    del task
    gc.collect()
    start, end = rec.by_name("abandoned")
    assert end["metadata"]["error.type"] == "cancelled"


class Oops(Exception):
    pass


def test_async_calls_pass_objects_exceptions_and_nesting(rec: Recorder) -> None:
    # Subscribers only: the callback gets the caller's object, is awaited in the caller's
    # task, work inside it is parented under the call, its exception is the caller's.
    args = {"q": [1, 2]}
    oops = Oops("no")

    async def cb(a: Any) -> Any:
        assert a is args
        baton.mark("inside")
        return a

    async def bad(_a: Any) -> Any:
        raise oops

    def plain(a: Any) -> Any:
        return cb(a)  # a plain function returning a coroutine: awaited too

    async def main() -> None:
        assert await baton.tool_async("ok", args, cb) is args
        assert await baton.tool_async("plain", args, plain) is args
        with pytest.raises(Oops) as info:
            await baton.tool_async("bad", args, bad)
        assert info.value is oops
        with pytest.raises(baton.InvalidArgumentError, match=r'^result\["x"\]: bytes is not JSON$'):
            await baton.tool_async("badresult", args, lambda a: {"x": b""})

    asyncio.run(main())
    ok = rec.by_name("ok")
    assert [e["parent_uuid"] for e in rec.by_name("inside")][0] == ok[0]["uuid"]
    assert ok[0]["data"] == args and ok[1]["data"] == args
    end = [e for e in rec.by_name("bad") if e.get("scope_category") == "end"][0]
    assert end["metadata"]["otel.status_description"] == "no"
    assert end["metadata"]["exception.type"] == "Oops"
    end = [e for e in rec.by_name("badresult") if e.get("scope_category") == "end"][0]
    assert end["metadata"]["error.type"] == "invalid_argument"


def test_async_calls_with_nothing_registered_still_check_json() -> None:
    async def main() -> None:
        with pytest.raises(baton.InvalidArgumentError, match=r'^args\["a"\]: bytes is not JSON$'):
            await baton.tool_async("t", {"a": b""}, lambda a: a)
        with pytest.raises(baton.InvalidArgumentError, match=r"^result: set is not JSON$"):
            await baton.tool_async("t", {}, lambda a: set())
        with pytest.raises(Oops):
            await baton.tool_async("t", {}, lambda a: (_ for _ in ()).throw(Oops()))

    asyncio.run(main())


# ----- isolation ------------------------------------------------------------------------------------


def test_gather_of_100_tasks_yields_100_separate_trees(rec: Recorder) -> None:
    async def worker(i: int) -> str:
        async with baton.scope(f"task-{i}", category="agent") as s:
            await asyncio.sleep(0.001 * (i % 7))

            async def cb(a: Any) -> Any:
                await asyncio.sleep(0)
                baton.mark(f"mark-{i}")
                return a

            await baton.tool_async(f"tool-{i}", {"i": i}, cb)
            with baton.scope(f"inner-{i}"):
                await asyncio.sleep(0)
            return s.uuid

    async def main() -> List[str]:
        async with baton.scope("root", category="agent") as root:
            uuids = await asyncio.gather(*(worker(i) for i in range(100)))
            assert baton.current_scope() == root.handle
        return list(uuids)

    uuids = asyncio.run(main())
    events = rec.flushed()
    root = [e for e in events if e["name"] == "root"][0]["uuid"]
    starts = {e["name"]: e for e in events if e.get("scope_category") == "start"}
    assert len(set(uuids)) == 100
    for i in range(100):
        task = starts[f"task-{i}"]
        assert task["parent_uuid"] == root
        assert starts[f"tool-{i}"]["parent_uuid"] == task["uuid"]
        assert starts[f"inner-{i}"]["parent_uuid"] == task["uuid"]
        assert [e for e in events if e["name"] == f"mark-{i}"][0]["parent_uuid"] == starts[f"tool-{i}"][
            "uuid"
        ]


def test_threads_have_their_own_stacks(rec: Recorder) -> None:
    barrier = threading.Barrier(8)
    errors: List[BaseException] = []

    def worker(i: int) -> None:
        try:
            with baton.scope(f"t{i}"):
                barrier.wait()
                for _ in range(50):
                    baton.tool(f"tool{i}", {}, lambda a: None)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = rec.flushed()
    scopes = {
        e["name"]: e["uuid"]
        for e in events
        if e.get("scope_category") == "start" and e["name"].startswith("t") and e["category"] == "function"
    }
    for e in events:
        if e["name"].startswith("tool"):
            assert e["parent_uuid"] == scopes["t" + e["name"][4:]]
    assert sum(1 for e in events if e["name"].startswith("tool")) == 8 * 50 * 2


def test_with_stack_fork_and_propagation(rec: Recorder) -> None:
    with baton.scope("outer") as outer:
        ctx = baton.propagation_context()
        tp = baton.traceparent()
        forked = baton.fork()
    assert ctx == {"version": 1, "root_uuid": outer.uuid, "parent_uuid": outer.uuid}
    assert tp == f"00-{outer.uuid.replace('-', '')}-{outer.uuid.replace('-', '')[16:]}-01"
    with baton.with_stack(forked):
        with baton.scope("child") as child:
            pass
    remote = baton.stack_from_propagation(ctx)
    with baton.with_stack(remote):
        baton.mark("remote")
    starts = {e["name"]: e for e in rec.flushed()}
    assert starts["child"]["parent_uuid"] == outer.uuid and child.handle is not None
    assert starts["remote"]["parent_uuid"] == outer.uuid


# ----- the GIL, re-entrancy, delivery ---------------------------------------------------------------


def test_flush_releases_the_gil_for_python_subscribers(names: List[str]) -> None:
    got: List[str] = []

    def slow(event: Dict[str, Any]) -> None:
        got.append(event["name"])

    names.append("slow-sub")
    baton.subscribe("slow-sub", slow)
    for i in range(200):
        baton.mark(f"m{i}")
    assert baton.flush(10.0) is True
    assert len(got) == 200


def test_subscriber_may_emit_and_push_but_not_flush(names: List[str], rec: Recorder) -> None:
    outcome: List[str] = []

    def echo(event: Dict[str, Any]) -> None:
        if event["name"] == "ping":
            with baton.scope("from-subscriber"):
                baton.mark("pong")
            try:
                baton.flush(1.0)
            except baton.InvalidStateError:
                outcome.append("flush refused")

    names.append("echo-sub")
    baton.subscribe("echo-sub", echo)
    baton.mark("ping")
    assert baton.flush(10.0)
    assert baton.flush(10.0)
    assert outcome == ["flush refused"]
    assert "pong" in rec.names()


def test_managed_call_from_middleware_is_invalid_state(names: List[str], rec: Recorder) -> None:
    seen: List[str] = []

    def guard(info: baton.CallInfo, args: Any) -> bool:
        if info.name == "outer":
            try:
                baton.tool("nested", {}, lambda a: None)
            except baton.InvalidStateError:
                seen.append("refused")
            baton.mark("guard-mark")
        return True

    names.append("nesting-guard")
    baton.register("tool_conditional_execution", "nesting-guard", guard)
    baton.tool("outer", {}, lambda a: None)
    assert seen == ["refused"]
    assert "guard-mark" in rec.names()


def test_parallel_threads_make_progress_while_calls_run(rec: Recorder) -> None:
    stop = time.monotonic() + 0.3
    counts = [0, 0]

    def spin(k: int) -> None:
        while time.monotonic() < stop:
            baton.tool("spin", {"k": k}, lambda a: a)
            counts[k] += 1

    threads = [threading.Thread(target=spin, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5.0)
    assert not any(t.is_alive() for t in threads)
    assert counts[0] > 10 and counts[1] > 10
    assert baton.flush(10.0)


# ----- plugins --------------------------------------------------------------------------------------


class Tagger:
    kind = "test_tagger"

    def validate(self, config: Dict[str, Any]) -> List[Dict[str, str]]:
        if not isinstance(config.get("tag"), str):
            return [{"level": "error", "code": "missing_field", "field": "tag", "message": "tag is required"}]
        return []

    def activate(self, config: Dict[str, Any], activation: baton.plugins.Activation) -> None:
        tag = config["tag"]
        activation.register("event_metadata_injector", "tag", lambda info: {"test.tag": tag})


def test_python_plugin_component(rec: Recorder) -> None:
    baton.plugins.register_component(Tagger())
    bad = {"version": 1, "components": [{"kind": "test_tagger", "config": {}}]}
    diags = baton.plugins.validate(bad)
    assert [(d["level"], d["code"], d.get("field")) for d in diags] == [
        ("error", "missing_field", "components[0].config.tag")
    ]
    with pytest.raises(baton.InvalidArgumentError) as info:
        baton.plugins.initialize(bad)
    assert getattr(info.value, "diagnostics", None) == diags
    report = baton.plugins.initialize(
        {"version": 1, "components": [{"kind": "test_tagger", "config": {"tag": "v1"}}]}
    )
    assert report["components"] == [
        {
            "kind": "test_tagger",
            "registrations": [{"kind": "event_metadata_injector", "name": "test_tagger.tag"}],
        }
    ]
    baton.mark("tagged")
    baton.plugins.clear()
    baton.mark("untagged")
    assert rec.by_name("tagged")[0]["metadata"] == {"test.tag": "v1"}
    assert rec.by_name("untagged")[0]["metadata"] == {}


def test_opentelemetry_section_is_available() -> None:
    # The native module installs baton-otel: OTLP export (http and https, both transports).
    doc = {
        "version": 1,
        "components": [
            {
                "kind": "observability",
                "config": {
                    "version": 1,
                    "opentelemetry": {
                        "enabled": True,
                        "endpoints": [
                            {
                                "type": "gen_ai",
                                "endpoint": "https://collector.example:4318/v1/traces",
                                "transport": "http_binary",
                            },
                            {"type": "openinference", "endpoint": "http://127.0.0.1:9", "transport": "grpc"},
                        ],
                    },
                },
            }
        ],
    }
    assert [d for d in baton.plugins.validate(doc) if d["level"] == "error"] == []
    report = baton.plugins.initialize(doc)
    assert report["components"][0]["kind"] == "observability"
    assert report["components"][0]["registrations"]
    baton.plugins.clear()


def test_plain_intercept_around_an_async_callback_that_really_waits(rec: Recorder, names: List[str]) -> None:
    def around(ctx: baton.CallContext, args: Any, next: baton.Next) -> Any:
        return {"wrapped": next(args)}

    names.append("sync-around")
    baton.register("tool_execution_intercept", "sync-around", around)

    async def slow(args: Any) -> Any:
        await asyncio.sleep(0.01)
        baton.mark("slept")
        return args

    async def main() -> Any:
        return await baton.tool_async("slow", {"x": 1}, slow)

    assert asyncio.run(main()) == {"wrapped": {"x": 1}}
    start = [e for e in rec.by_name("slow") if e["scope_category"] == "start"][0]
    assert rec.by_name("slept")[0]["parent_uuid"] == start["uuid"]


def test_managed_call_from_async_middleware_is_invalid_state(names: List[str], rec: Recorder) -> None:
    seen: List[str] = []

    async def guard(info: baton.CallInfo, args: Any) -> bool:
        if info.name == "outer":
            try:
                await baton.tool_async("nested", {}, lambda a: None)
            except baton.InvalidStateError:
                seen.append("refused")
        return True

    async def nested_ok(args: Any) -> Any:
        # a callback below every intercept may nest managed calls
        return await baton.tool_async("inner", {}, lambda a: "ok")

    names.append("async-nesting-guard")
    baton.register("tool_conditional_execution", "async-nesting-guard", guard)

    async def main() -> Any:
        return await baton.tool_async("outer", {}, nested_ok)

    assert asyncio.run(main()) == "ok"
    assert seen == ["refused"]
    assert "inner:start" in rec.names()


def test_subscribers_get_lazy_mapping_events(names: List[str]) -> None:
    import collections.abc
    import json

    got: List[baton.Event] = []
    names.append("lazy-sub")
    baton.subscribe("lazy-sub", got.append)
    baton.mark("look", {"a": [1, 2]}, metadata={"k": "v"})
    assert baton.flush(10.0)
    (e,) = got
    assert isinstance(e, collections.abc.Mapping)
    assert (e.name, e.kind, e.scope_category, e.parent_uuid) == ("look", "mark", None, None)
    assert e["data"] == {"a": [1, 2]} and e.get("missing", 7) == 7 and "metadata" in e
    d = e.to_dict()
    assert d == json.loads(e.to_json()) == dict(e) and e == d
    assert sorted(d) == sorted(
        [
            "kind",
            "atof_version",
            "uuid",
            "parent_uuid",
            "timestamp",
            "name",
            "data",
            "data_schema",
            "metadata",
        ]
    )
    assert d["uuid"] == e.uuid and d["metadata"] == {"k": "v"}


def test_a_subscriber_keeping_its_arguments_keeps_its_events() -> None:
    kept: List[Any] = []

    def keep(*args: Any) -> None:
        kept.append(args)

    baton.subscribe("test.keep", keep)
    try:
        for i in range(3):
            baton.mark(f"m{i}")
        assert baton.flush(10.0)
    finally:
        baton.deregister("subscriber", "test.keep")
    assert [args[0]["name"] for args in kept] == ["m0", "m1", "m2"]
