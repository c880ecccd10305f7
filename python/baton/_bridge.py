"""The asyncio side of the bridge (see crates/python/src/bridge.rs).

``drive`` runs a native ``Pending`` (a core future) inside the awaiting task: each step polls
the future once; when it needs a Python awaitable (a coroutine returned by a callback or
middleware), the awaitable is awaited right here, in the same task and context, and the
outcome is handed back. ``await_sync`` resolves an awaitable for a synchronous entry point.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any, AsyncIterator, Awaitable, Dict

_get_running_loop = asyncio._get_running_loop


in_middleware: contextvars.ContextVar[bool] = contextvars.ContextVar("baton.in_middleware", default=False)
"""True while a driver awaits middleware (an async guardrail or intercept), not a callback."""


async def drive(pending: Any) -> Any:
    done, value, middleware = pending.step()
    while not done:
        token = in_middleware.set(middleware)
        try:
            result = await value
        except Exception as exc:  # noqa: BLE001 - handed to the core, re-raised by it
            in_middleware.reset(token)
            done, value, middleware = pending.step(False, exc)
        except BaseException:
            # Cancellation, interpreter exit, or the cycle collector closing an abandoned task
            # (outside the task's context, where the token cannot be reset): drop the core
            # future (the call ends as cancelled).
            try:
                in_middleware.reset(token)
            except ValueError:
                pass
            pending.close()
            raise
        else:
            in_middleware.reset(token)
            done, value, middleware = pending.step(True, result)
    return value


async def host_anext(stream: Any, anext: Any) -> Any:
    """The next chunk of a host-run stream over an async iterator (``LlmStream.__anext__``,
    which has made the call's scope current): pulled, then recorded."""
    try:
        chunk = await anext()
    except StopAsyncIteration:
        stream._pop()
        stream._end()
        raise
    except Exception as exc:  # noqa: BLE001 - ends the stream, then propagates unchanged
        stream._pop()
        stream._fail(exc)
        raise
    except BaseException:
        stream._pop()
        stream.close()
        raise
    return stream._chunk(chunk)


async def host_pull(stream: Any, source: Any) -> AsyncIterator[Any]:
    """``async for`` over a host-run stream with an async source (``LlmStream.__aiter__``):
    each chunk is pulled with the call's scope current, recorded, and yielded (the consumer
    runs with the scope no longer current)."""
    push, record = stream._push, stream._chunk
    if not push():
        return  # closed
    try:
        async for chunk in source:
            yield record(chunk)
            if not push():
                return  # closed while the consumer held the chunk
    except Exception as exc:  # noqa: BLE001 - ends the stream, then propagates unchanged
        stream._pop()
        stream._fail(exc)
        raise
    except BaseException:
        stream._pop()
        stream.close()
        raise
    stream._pop()
    stream._end()


async def host_anext_sync(stream: Any) -> Any:
    """The same over a plain iterator (a sync source in ``async for``)."""
    try:
        return stream.__next__()
    except StopIteration:
        raise StopAsyncIteration from None


class _Local(threading.local):
    loop: "asyncio.AbstractEventLoop | None" = None


_local = _Local()


async def _await(aw: Awaitable[Any]) -> Any:
    return await aw


def _run_in_thread(aw: Awaitable[Any]) -> Any:
    ctx = contextvars.copy_context()
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = ctx.run(asyncio.run, _await(aw))
        except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread
            box["error"] = e

    t = threading.Thread(target=target, name="baton-await-sync", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def await_sync(aw: Awaitable[Any]) -> Any:
    """Resolves an awaitable met by a synchronous call (or by a plain-function intercept
    inside an async call).

    Without a running event loop in this thread, it runs on a private per-thread loop. With
    one, that loop is busy running the caller and cannot be re-entered: the awaitable runs to
    completion on a helper thread's own event loop (in a copy of the caller's context) while
    this thread waits.
    """
    if _get_running_loop() is None:
        loop = _local.loop
        if loop is None or loop.is_closed():
            loop = _local.loop = asyncio.new_event_loop()
        return loop.run_until_complete(_await(aw))
    return _run_in_thread(aw)
