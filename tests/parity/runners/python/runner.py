"""The Python parity runner: executes one scenario (tests/parity/README.md) through the public,
idiomatic ``baton`` package, with every behaviour a real Python function, and prints
``{events, subscribers, results}`` as JSON.

All steps run inside one asyncio task, so the sync API is exercised from async code too; steps
flagged ``"async": true`` use the asyncio forms (``await baton.tool_async(...)``), and async
behaviours are ``async def`` functions.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional

try:
    import baton
    import baton.codecs
    import baton.plugins
except ImportError as e:  # pragma: no cover - an environment problem, not a scenario failure
    print(
        f"python parity runner: cannot import baton ({e}); build it first: just build-python", file=sys.stderr
    )
    sys.exit(1)

RECORDER = "parity.recorder"
FLUSH = 30.0


class RunnerError(Exception):
    """What a ``fail`` behaviour raises: a host exception, not a Baton error."""


class StepError(Exception):
    pass


# ----- JSON pointer edits -------------------------------------------------------------------


def _tokens(ptr: str) -> List[str]:
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise RunnerError(f"invalid JSON pointer '{ptr}': must be empty or start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")]


def ptr_set(doc: Any, ptr: str, value: Any) -> Any:
    toks = _tokens(ptr)
    if not toks:
        return copy.deepcopy(value)
    if doc is None:
        doc = {}
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, dict):
            if not isinstance(cur.get(t), (dict, list)):
                if cur.get(t) is None:
                    cur[t] = {}
                else:
                    raise RunnerError(f"pointer '{ptr}': cannot descend into {json.dumps(cur[t])}")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError):
                raise RunnerError(f"pointer '{ptr}': bad index '{t}'") from None
        else:
            raise RunnerError(f"pointer '{ptr}': cannot descend into {json.dumps(cur)}")
    last = toks[-1]
    if isinstance(cur, dict):
        cur[last] = copy.deepcopy(value)
    elif isinstance(cur, list):
        if last == "-":
            cur.append(copy.deepcopy(value))
        else:
            try:
                cur[int(last)] = copy.deepcopy(value)
            except (ValueError, IndexError):
                raise RunnerError(f"pointer '{ptr}': bad index '{last}'") from None
    else:
        raise RunnerError(f"pointer '{ptr}': cannot set a field of {json.dumps(cur)}")
    return doc


def set_all(doc: Any, edits: Dict[str, Any]) -> Any:
    for ptr in sorted(edits):  # the Rust runner's map is ordered by key
        doc = ptr_set(doc, ptr, edits[ptr])
    return doc


def ptr_remove(doc: Any, ptr: str) -> Any:
    toks = _tokens(ptr)
    if not toks:
        return None
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list) and t.isdigit() and int(t) < len(cur):
            cur = cur[int(t)]
        else:
            return doc
    last = toks[-1]
    if isinstance(cur, dict):
        cur.pop(last, None)
    elif isinstance(cur, list) and last.isdigit() and int(last) < len(cur):
        del cur[int(last)]
    return doc


# ----- behaviours as Python functions -----------------------------------------------------------

Recorders = Dict[str, List[Any]]


def _fail(b: Dict[str, Any]) -> None:
    if isinstance(b.get("fail"), str):
        raise RunnerError(b["fail"])


def guardrail(b: Dict[str, Any]) -> Callable[..., Any]:
    def decide(info: baton.CallInfo, _input: Any) -> Any:
        _fail(b)
        if isinstance(b.get("reject"), str):
            return b["reject"]
        if isinstance(b.get("reject_if_name"), str):
            if info.name == b["reject_if_name"]:
                return b.get("reason", "rejected")
            return True
        return True

    if b.get("async"):

        async def decide_async(info: baton.CallInfo, input: Any) -> Any:  # noqa: A002
            return decide(info, input)

        return decide_async
    return decide


def request_intercept(b: Dict[str, Any]) -> Callable[..., Any]:
    def edit(_info: baton.CallInfo, input: Any) -> Any:  # noqa: A002
        _fail(b)
        if isinstance(b.get("set"), dict):
            input = set_all(input, b["set"])
        return input

    if b.get("async"):

        async def edit_async(info: baton.CallInfo, input: Any) -> Any:  # noqa: A002
            return edit(info, input)

        return edit_async
    return edit


def _queue_marks(ctx: baton.CallContext, b: Dict[str, Any]) -> None:
    for m in b.get("marks") or []:
        ctx.queue_mark(m.get("name", "mark"), m.get("data"))


def execution_intercept(b: Dict[str, Any]) -> Callable[..., Any]:
    if b.get("async"):

        async def run_async(ctx: baton.CallContext, input: Any, next: Any) -> Any:  # noqa: A002
            _queue_marks(ctx, b)
            _fail(b)
            if "replace" in b:
                return b["replace"]
            if isinstance(b.get("retry"), int):
                last: Any = None
                err: Optional[BaseException] = None
                for _ in range(b["retry"]):
                    try:
                        last, err = await next(input), None
                    except Exception as e:  # noqa: BLE001
                        err = e
                if err is not None:
                    raise err
                return last
            if isinstance(b.get("retry_on_error"), int):
                tries = 0
                while True:
                    try:
                        return await next(input)
                    except Exception:
                        if tries >= b["retry_on_error"]:
                            raise
                        tries += 1
            if isinstance(b.get("set_input"), dict):
                input = set_all(input, b["set_input"])
            out = await next(input)
            if isinstance(b.get("set_result"), dict):
                out = set_all(out, b["set_result"])
            return out

        return run_async

    def run(ctx: baton.CallContext, input: Any, next: baton.Next) -> Any:  # noqa: A002
        _queue_marks(ctx, b)
        _fail(b)
        if "replace" in b:
            return b["replace"]
        if isinstance(b.get("retry"), int):
            last: Any = None
            err: Optional[BaseException] = None
            for _ in range(b["retry"]):
                try:
                    last, err = next(input), None
                except Exception as e:  # noqa: BLE001
                    err = e
            if err is not None:
                raise err
            return last
        if isinstance(b.get("retry_on_error"), int):
            tries = 0
            while True:
                try:
                    return next(input)
                except Exception:
                    if tries >= b["retry_on_error"]:
                        raise
                    tries += 1
        if isinstance(b.get("set_input"), dict):
            input = set_all(input, b["set_input"])
        out = next(input)
        if isinstance(b.get("set_result"), dict):
            out = set_all(out, b["set_result"])
        return out

    return run


def stream_intercept(b: Dict[str, Any]) -> Callable[..., Any]:
    def wrap(_ctx: baton.CallContext, chunks: baton.Chunks) -> Any:
        _fail(b)
        out: Iterator[Any] = iter(chunks)
        if isinstance(b.get("set_chunk"), dict):
            edits = b["set_chunk"]
            inner = out

            def mapped() -> Iterator[Any]:
                for c in inner:
                    yield set_all(c, edits)

            out = mapped()
        if "append" in b:
            tail = b["append"]
            inner2 = out

            def appended() -> Iterator[Any]:
                yield from inner2
                yield tail

            out = appended()
        return out

    return wrap


def payload_sanitizer(b: Dict[str, Any]) -> Callable[..., Any]:
    def sanitize(_info: baton.CallInfo, v: Any) -> Any:
        _fail(b)
        if b.get("omit") is True:
            return None
        if isinstance(b.get("set"), dict):
            v = set_all(v, b["set"])
        for p in b.get("remove") or []:
            v = ptr_remove(v, p)
        return v

    return sanitize


def event_sanitizer(b: Dict[str, Any]) -> Callable[..., Any]:
    def sanitize(_info: baton.EventInfo, data: Any, metadata: Dict[str, Any]) -> Any:
        _fail(b)
        if isinstance(b.get("set_metadata"), dict):
            metadata = copy.deepcopy(b["set_metadata"])
        if "set_data" in b:
            data = copy.deepcopy(b["set_data"])
        return data, metadata

    return sanitize


def injector(b: Dict[str, Any]) -> Callable[..., Any]:
    def inject(_info: baton.EventInfo) -> Any:
        _fail(b)
        return b.get("inject") if isinstance(b.get("inject"), dict) else {}

    return inject


def subscriber(name: str, b: Dict[str, Any], recorders: Recorders) -> Callable[..., Any]:
    if isinstance(b.get("fail"), str):
        msg = b["fail"]

        def failing(_event: Dict[str, Any]) -> None:
            raise RunnerError(msg)

        return failing
    events = recorders.setdefault(name, [])

    def record(event: baton.Event) -> None:
        events.append(event.to_dict())

    return record


def behavior(kind: str, name: str, b: Any, recorders: Recorders) -> Callable[..., Any]:
    if not isinstance(b, dict):
        raise baton.InvalidArgumentError(f"behavior: expected an object, got {json.dumps(b)}")
    if kind in ("tool_conditional_execution", "llm_conditional_execution"):
        return guardrail(b)
    if kind in ("tool_request_intercept", "llm_request_intercept"):
        return request_intercept(b)
    if kind in ("tool_execution_intercept", "llm_execution_intercept"):
        return execution_intercept(b)
    if kind == "llm_stream_execution_intercept":
        return stream_intercept(b)
    if kind in (
        "tool_sanitize_request",
        "tool_sanitize_response",
        "llm_sanitize_request",
        "llm_sanitize_response",
    ):
        return payload_sanitizer(b)
    if kind in ("mark_sanitize", "scope_sanitize_start", "scope_sanitize_end"):
        return event_sanitizer(b)
    if kind == "event_metadata_injector":
        return injector(b)
    if kind == "subscriber":
        return subscriber(name, b, recorders)
    raise baton.InvalidArgumentError(f"unknown middleware kind '{kind}'")


# ----- impls (the host callbacks of managed calls) ------------------------------------------


def run_impl(imp: Dict[str, Any], input: Any) -> Any:  # noqa: A002
    for m in imp.get("marks") or []:
        baton.mark(m.get("name", "mark"), m.get("data"))
    if isinstance(imp.get("fail"), str):
        raise RunnerError(imp["fail"])
    if imp.get("echo") is True:
        return input
    return imp.get("return")


def _fail_after_msg(imp: Dict[str, Any]) -> str:
    n = imp["fail_after"]
    return imp["fail"] if isinstance(imp.get("fail"), str) else f"stream failed after {n} chunks"


def impl_chunks(imp: Dict[str, Any]) -> Iterator[Any]:
    chunks = list(imp.get("chunks") or [])
    if isinstance(imp.get("fail_after"), int):
        yield from chunks[: imp["fail_after"]]
        raise RunnerError(_fail_after_msg(imp))
    yield from chunks


async def impl_chunks_async(imp: Dict[str, Any]) -> AsyncIterator[Any]:
    for c in impl_chunks(imp):
        yield c


# ----- the runner ------------------------------------------------------------------------------


class Runner:
    def __init__(self, out_dir: str) -> None:
        self.refs: Dict[str, Any] = {}
        self.results: Dict[str, Any] = {}
        self.recorders: Recorders = {}
        self.out_dir = out_dir

    def resolve(self, v: Any) -> Any:
        if isinstance(v, dict):
            if len(v) == 1 and "$ref" in v and isinstance(v["$ref"], str) and v["$ref"] in self.results:
                return copy.deepcopy(self.results[v["$ref"]])
            return {k: self.resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        if isinstance(v, str) and "${OUT}" in v:
            return v.replace("${OUT}", self.out_dir)
        return v

    def scope_ref(self, step: Dict[str, Any], key: str) -> Optional[baton.Scope]:
        name = step.get(key)
        if name is None:
            return None
        found = self.refs.get(name) if isinstance(name, str) else None
        if isinstance(found, baton.Scope):
            return found
        raise baton.NotFoundError(f"{key}: {json.dumps(name)} does not name a scope")

    def ref_of(self, step: Dict[str, Any], key: str, cls: type) -> Any:
        found = self.refs.get(step.get(key, ""))
        if not isinstance(found, cls):
            raise baton.NotFoundError(f"{key}: {json.dumps(step.get(key))} does not name a {cls.__name__}")
        return found

    async def run_steps(self, steps: List[Any]) -> None:
        for i, raw in enumerate(steps):
            step = self.resolve(raw)
            op = step.get("op", "<missing op>")
            expect = step.get("expect_error")
            try:
                result = await self.exec(op, step)
            except StepError:
                raise
            except Exception as e:  # noqa: BLE001
                kind = e.kind if isinstance(e, baton.BatonError) else "callback_failed"
                if expect is None:
                    raise StepError(f"step {i} ({op}) failed: {kind}: {e}") from e
                if kind != expect:
                    raise StepError(f"step {i} ({op}) failed with {kind}: {e}, expected {expect}") from e
                result = ("value", {"error": kind})
            else:
                if expect is not None:
                    raise StepError(f"step {i} ({op}) succeeded but expected error {expect}")
            name = step.get("as")
            if isinstance(name, str) and result is not None:
                tag, value = result
                self.results[name] = value if tag == "value" else "<handle>"
                self.refs[name] = value

    async def exec(self, op: str, step: Dict[str, Any]) -> Any:  # noqa: C901 - one branch per op
        is_async = step.get("async") is True
        if op == "push":
            s = baton.push(
                step["name"],
                category=step.get("category", "function"),
                input=step.get("input"),
                metadata=step.get("metadata"),
                attributes=step.get("attributes"),
                category_profile=step.get("category_profile"),
                parent=self.scope_ref(step, "parent"),
            )
            return ("handle", s)
        if op == "pop":
            s = self.scope_ref(step, "scope")
            if s is None:
                raise baton.InvalidArgumentError("pop: step.scope is required")
            err = step.get("error")
            baton.pop(
                s,
                output=step.get("output"),
                metadata=step.get("metadata"),
                error=(err if isinstance(err, str) else "error") if "error" in step else None,
            )
            return None
        if op == "mark":
            baton.mark(
                step["name"],
                step.get("data"),
                metadata=step.get("metadata"),
                parent=self.scope_ref(step, "parent"),
                category=step.get("category"),
                category_profile=step.get("category_profile"),
                data_schema=step.get("data_schema") if isinstance(step.get("data_schema"), dict) else None,
            )
            return None
        if op == "metric":
            baton.metric(step["name"], step.get("measurements"), unit=step.get("unit"))
            return None
        if op == "new_stack":
            return ("handle", baton.new_stack())
        if op == "fork":
            return ("handle", baton.fork())
        if op == "from_propagation":
            return ("handle", baton.stack_from_propagation(step.get("context")))
        if op == "with_stack":
            st = self.ref_of(step, "stack", baton.Stack)
            with baton.with_stack(st):
                await self.run_steps(step.get("steps") or [])
            return None
        if op == "propagation_context":
            return ("value", baton.propagation_context())
        if op == "traceparent":
            return ("value", baton.traceparent())
        if op == "flush":
            baton.flush(FLUSH)
            return None
        if op == "shutdown":
            return ("value", baton.shutdown(FLUSH))
        if op == "diagnostics":
            baton.flush(FLUSH)
            d = baton.diagnostics()
            return (
                "value",
                {k: d[k] for k in ("dropped_events", "subscriber_failures", "middleware_failures")},
            )
        if op == "tool":
            imp = step.get("impl") or {}
            opts = dict(
                tool_call_id=step.get("tool_call_id"),
                metadata=step.get("metadata"),
                attributes=step.get("attributes"),
                parent=self.scope_ref(step, "parent"),
            )
            if is_async:

                async def cb_async(a: Any) -> Any:
                    return run_impl(imp, a)

                return ("value", await baton.tool_async(step["name"], step.get("args"), cb_async, **opts))
            return ("value", baton.tool(step["name"], step.get("args"), lambda a: run_impl(imp, a), **opts))
        if op == "llm":
            imp = step.get("impl") or {}
            lopts = self.llm_options(step)
            if is_async:

                async def llm_cb_async(r: Any) -> Any:
                    return run_impl(imp, r)

                return (
                    "value",
                    await baton.llm_async(step["name"], step.get("request"), llm_cb_async, **lopts),
                )
            return (
                "value",
                baton.llm(step["name"], step.get("request"), lambda r: run_impl(imp, r), **lopts),
            )
        if op == "llm_stream":
            imp = step.get("impl") or {}
            lopts = self.llm_options(step)
            take = step.get("take")
            got: List[Any] = []
            if is_async:
                stream = await baton.llm_stream_async(
                    step["name"],
                    step.get("request"),
                    lambda _r: impl_chunks_async(imp),
                    chunk_marks=step.get("chunk_marks", True),
                    **lopts,
                )
                try:
                    async for chunk in stream:
                        if take is not None and len(got) >= take:
                            break
                        got.append(chunk)
                        if take is not None and len(got) >= take:
                            break
                finally:
                    stream.close()
                return ("value", got)

            def produce(_r: Any) -> Iterator[Any]:
                if imp.get("marks"):
                    run_impl({"marks": imp["marks"]}, None)
                return impl_chunks(imp)

            stream = baton.llm_stream(
                step["name"], step.get("request"), produce, chunk_marks=step.get("chunk_marks", True), **lopts
            )
            with stream:
                while take is None or len(got) < take:
                    try:
                        got.append(next(stream))
                    except StopIteration:
                        break
            return ("value", got)
        if op == "tool_start":
            h = baton.tool_start(
                step["name"],
                step.get("args"),
                tool_call_id=step.get("tool_call_id"),
                metadata=step.get("metadata"),
                attributes=step.get("attributes"),
                parent=self.scope_ref(step, "parent"),
            )
            return ("handle", h)
        if op == "llm_start":
            h = baton.llm_start(step["name"], step.get("request"), **self.llm_options(step))
            return ("handle", h)
        if op in ("tool_end", "llm_end"):
            h = self.ref_of(step, "handle", baton.CallHandle)
            key = "result" if op == "tool_end" else "response"
            err = step.get("error")
            end = baton.tool_end if op == "tool_end" else baton.llm_end
            end(
                h,
                step.get(key),
                metadata=step.get("metadata"),
                error=(err if isinstance(err, str) else "error") if "error" in step else None,
            )
            return None
        if op == "tool_conditional_execution":
            if is_async:
                await baton.tool_conditional_execution_async(step["name"], step.get("args"))
            else:
                baton.tool_conditional_execution(step["name"], step.get("args"))
            return ("value", None)
        if op == "llm_conditional_execution":
            if is_async:
                await baton.llm_conditional_execution_async(step["name"], step.get("request"))
            else:
                baton.llm_conditional_execution(step["name"], step.get("request"))
            return ("value", None)
        if op == "tool_request_intercepts":
            if is_async:
                return ("value", await baton.tool_request_intercepts_async(step["name"], step.get("args")))
            return ("value", baton.tool_request_intercepts(step["name"], step.get("args")))
        if op == "llm_request_intercepts":
            if is_async:
                return ("value", await baton.llm_request_intercepts_async(step["name"], step.get("request")))
            return ("value", baton.llm_request_intercepts(step["name"], step.get("request")))
        if op == "register":
            kind, name = step["kind"], step["name"]
            fn = behavior(kind, name, step.get("behavior", {}), self.recorders)
            baton.register(
                kind,
                name,
                fn,
                priority=int(step.get("priority", 0)),
                scope=self.scope_ref(step, "scope"),
                break_chain=step.get("break_chain") is True,
            )
            return None
        if op == "deregister":
            return (
                "value",
                baton.deregister(step["kind"], step["name"], scope=self.scope_ref(step, "scope")),
            )
        if op == "read_jsonl":
            text = read_matching(step["path"])
            return ("value", [json.loads(line) for line in text.splitlines() if line.strip()])
        if op == "read_json":
            return ("value", json.loads(read_matching(step["path"])))
        if op == "plugin_validate":
            return ("value", baton.plugins.validate(step.get("config")))
        if op == "plugin_initialize":
            return ("value", baton.plugins.initialize(step.get("config")))
        if op == "plugin_clear":
            baton.plugins.clear()
            return None
        if op == "codec_decode_request":
            return ("value", baton.codecs.decode_request(step["codec"], step["request"]))
        if op == "codec_encode_request":
            return ("value", baton.codecs.encode_request(step["codec"], step["normalized"], step["original"]))
        if op == "codec_decode_response":
            return ("value", baton.codecs.decode_response(step["codec"], step["response"]))
        if op == "codec_aggregate_stream":
            return ("value", baton.codecs.aggregate_stream(step["codec"], step["chunks"]))
        raise baton.InvalidArgumentError(f"unknown op '{op}'")

    def llm_options(self, step: Dict[str, Any]) -> Dict[str, Any]:
        return dict(
            model_name=step.get("model_name"),
            metadata=step.get("metadata"),
            attributes=step.get("attributes"),
            parent=self.scope_ref(step, "parent"),
            codec=step.get("codec"),
            response_codec=step.get("response_codec"),
        )


def read_matching(path: str) -> str:
    p = Path(path)
    if "*" in p.name:
        matches = sorted(p.parent.glob(p.name))
        if len(matches) != 1:
            what = "no file matches" if not matches else f"{len(matches)} files match"
            raise baton.InvalidArgumentError(f"path '{path}': {what}")
        p = matches[0]
    try:
        return p.read_text()
    except OSError as e:
        raise baton.InvalidArgumentError(f"path '{p}': {e}") from None


async def main(path: str) -> Dict[str, Any]:
    scenario = json.loads(Path(path).read_text())
    steps = scenario.get("steps")
    if not isinstance(steps, list):
        raise StepError("scenario has no steps array")
    out_dir = tempfile.mkdtemp(prefix=f"baton-parity-py-{os.getpid()}-")
    runner = Runner(out_dir)
    try:
        baton.subscribe(RECORDER, subscriber(RECORDER, {"record": True}, runner.recorders))
        try:
            await runner.run_steps(steps)
        finally:
            if not baton.is_shutdown():
                baton.flush(FLUSH)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    recorded = dict(runner.recorders)
    events = recorded.pop(RECORDER, [])
    return {"events": events, "subscribers": recorded, "results": runner.results}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: run SCENARIO.json", file=sys.stderr)
        sys.exit(2)
    try:
        out = asyncio.run(main(sys.argv[1]))
    except StepError as e:
        print(f"scenario failed: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))
