"""Baton: a portable execution runtime for AI agent systems.

Scopes (``with baton.scope(...)``), managed tool and LLM calls (``baton.tool``,
``await baton.tool_async``, ``baton.llm_stream``), middleware and subscribers
(``baton.register``), ATOF events. Every rule lives in the Rust core (``baton._native``);
this module is the idiomatic Python surface. See docs/python.md.

The *current stack* is kept in a ``contextvars.ContextVar``: every thread and every asyncio
task gets its own stack automatically. A task or thread that inherits a stack from the code
that started it gets a fork of it, so its first scope is parented under the scope that was
current there, and concurrent tasks never share a stack.
"""

from __future__ import annotations

import asyncio
import atexit
import collections.abc
import contextvars
import functools
import inspect
import threading
import types
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterable,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

from . import _native
from ._bridge import in_middleware as _in_middleware
from ._errors import (
    AlreadyExistsError,
    AlreadyShutdownError,
    BatonError,
    CallbackFailedError,
    GuardrailRejected,
    InternalError,
    InvalidArgumentError,
    InvalidStateError,
    NotFoundError,
    TimeoutError,
    UpstreamError,
)
from ._native import (
    AsyncNext,
    CallContext,
    CallHandle,
    CallInfo,
    Chunks,
    Event,
    EventInfo,
    LlmStream,
    Next,
    Scope,
    Stack,
)

__all__ = [
    "FAMILIES",
    "JSON",
    "AlreadyExistsError",
    "AlreadyShutdownError",
    "AsyncNext",
    "BatonError",
    "CallContext",
    "CallHandle",
    "CallInfo",
    "CallbackFailedError",
    "Chunks",
    "Event",
    "EventInfo",
    "GuardrailRejected",
    "InternalError",
    "InvalidArgumentError",
    "InvalidStateError",
    "LlmStream",
    "Next",
    "NotFoundError",
    "Scope",
    "Stack",
    "TimeoutError",
    "UpstreamError",
    "configure",
    "current_scope",
    "current_stack",
    "deregister",
    "diagnostics",
    "flush",
    "fork",
    "is_shutdown",
    "llm",
    "llm_async",
    "llm_conditional_execution",
    "llm_conditional_execution_async",
    "llm_end",
    "llm_request_intercepts",
    "llm_request_intercepts_async",
    "llm_start",
    "llm_stream",
    "llm_stream_async",
    "mark",
    "metric",
    "middleware",
    "new_stack",
    "pop",
    "propagation_context",
    "push",
    "register",
    "scope",
    "shutdown",
    "stack_from_propagation",
    "subscribe",
    "tool",
    "tool_async",
    "tool_conditional_execution",
    "tool_conditional_execution_async",
    "tool_end",
    "tool_fn",
    "tool_request_intercepts",
    "tool_request_intercepts_async",
    "tool_start",
    "traceparent",
    "with_stack",
]

__version__ = "0.1.0"

collections.abc.Mapping.register(Event)

JSON = Union[None, bool, int, float, str, List["JSON"], Dict[str, "JSON"]]
"""Plain JSON data: what payloads (args, results, requests, data, metadata) may contain."""

FAMILIES: Tuple[str, ...] = tuple(_native.FAMILIES)
"""The middleware family names accepted by :func:`register` (plus ``"subscriber"``)."""

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# ----- the current stack ------------------------------------------------------------------

_CURRENT: contextvars.ContextVar[Optional[Tuple[Stack, object]]] = contextvars.ContextVar(
    "baton.stack", default=None
)
_get_running_loop = asyncio._get_running_loop
_current_task = asyncio.current_task
_get_ident = threading.get_ident


def _owner() -> object:
    if _get_running_loop() is not None:
        task = _current_task()
        if task is not None:
            return task
    return _get_ident()


def current_stack() -> Stack:
    """The stack of the current thread or asyncio task (created, or forked, on first use)."""
    cur = _CURRENT.get()
    me = _owner()
    if cur is not None:
        if cur[1] == me:
            return cur[0]
        stack = cur[0].fork()
    else:
        stack = _native.new_stack()
    _CURRENT.set((stack, me))
    return stack


def new_stack() -> Stack:
    """A fresh, empty stack with no parent (make it current with :func:`with_stack`)."""
    return _native.new_stack()


def fork() -> Stack:
    """A new stack whose first scope is parented under the current scope."""
    return current_stack().fork()


def stack_from_propagation(context: Mapping[str, Any]) -> Stack:
    """A stack continuing another process's work, from a :func:`propagation_context`."""
    return _native.stack_from_propagation(dict(context))


class with_stack:  # noqa: N801 - used like a function: ``with baton.with_stack(s):``
    """Makes ``stack`` current inside a ``with`` / ``async with`` block."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._tokens: List[contextvars.Token[Optional[Tuple[Stack, object]]]] = []

    def __enter__(self) -> Stack:
        self._tokens.append(_CURRENT.set((self._stack, _owner())))
        return self._stack

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._tokens.pop())

    async def __aenter__(self) -> Stack:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()


def propagation_context() -> Dict[str, Any]:
    """``{"version": 1, "root_uuid"?, "parent_uuid"}`` for handing work to another process."""
    return current_stack().propagation_context()


def traceparent() -> str:
    """The W3C ``traceparent`` of the current scope (``InvalidStateError`` when there is none)."""
    return current_stack().traceparent()


def current_scope() -> Optional[Scope]:
    """The innermost open scope of the current stack, or ``None``."""
    return current_stack().current()


def _not_nested(what: str) -> None:
    if _in_middleware.get():
        raise InvalidStateError(
            f"{what} cannot be called from inside middleware: it would re-enter the runtime"
        )


# ----- scopes -------------------------------------------------------------------------------

ScopeRef = Union[Scope, "scope"]


def _handle(s: Optional[ScopeRef]) -> Optional[Scope]:
    if s is None or isinstance(s, Scope):
        return s
    if isinstance(s, scope):
        if s.handle is None:
            raise InvalidStateError(f"scope '{s.name}' is not open")
        return s.handle
    raise InvalidArgumentError(f"parent: expected a baton.Scope, got {type(s).__name__}")


def push(
    name: str,
    *,
    category: str = "function",
    input: Any = None,  # noqa: A002 - the event field's name
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    category_profile: Optional[Mapping[str, Any]] = None,
    data_schema: Optional[Mapping[str, str]] = None,
    parent: Optional[ScopeRef] = None,
) -> Scope:
    """Opens a scope on the current stack and returns its handle (end it with :func:`pop`)."""
    return current_stack().push(
        name,
        category=category,
        input=input,
        metadata=metadata,
        attributes=attributes,
        category_profile=category_profile,
        data_schema=data_schema,
        parent=_handle(parent),
    )


def pop(
    s: ScopeRef,
    *,
    output: Any = None,
    metadata: Optional[Mapping[str, Any]] = None,
    error: Union[BaseException, str, None] = None,
) -> None:
    """Ends a scope (unwinding scopes still open above it). ``error`` ends it with ERROR."""
    h = _handle(s)
    assert h is not None
    current_stack().pop(h, output=output, metadata=metadata, error=error)


class scope:  # noqa: N801 - a context manager and decorator used like a function
    """A scope as a context manager (``with`` / ``async with``) or a decorator.

    ``with baton.scope("turn", category="agent") as s: ...`` pushes the scope on entry and
    pops it on exit; an exception ends it with ERROR status and propagates. Set ``s.output``
    (and ``s.end_metadata``) inside the block to record them on the end event. Decorating a
    function (sync or ``async def``) runs every call of it in a fresh scope.
    """

    def __init__(
        self,
        name: str,
        *,
        category: str = "function",
        input: Any = None,  # noqa: A002
        metadata: Optional[Mapping[str, Any]] = None,
        attributes: Optional[Sequence[str]] = None,
        category_profile: Optional[Mapping[str, Any]] = None,
        data_schema: Optional[Mapping[str, str]] = None,
        parent: Optional[ScopeRef] = None,
    ) -> None:
        self.name = name
        self.category = category
        self.input = input
        self.metadata = metadata
        self.attributes = attributes
        self.category_profile = category_profile
        self.data_schema = data_schema
        self.parent = parent
        self.handle: Optional[Scope] = None
        self.output: Any = None
        self.end_metadata: Optional[Mapping[str, Any]] = None
        self._stack: Optional[Stack] = None

    @property
    def uuid(self) -> str:
        if self.handle is None:
            raise InvalidStateError(f"scope '{self.name}' is not open")
        return self.handle.uuid

    def _clone(self) -> "scope":
        return scope(
            self.name,
            category=self.category,
            input=self.input,
            metadata=self.metadata,
            attributes=self.attributes,
            category_profile=self.category_profile,
            data_schema=self.data_schema,
            parent=self.parent,
        )

    def __enter__(self) -> "scope":
        if self.handle is not None:
            raise InvalidStateError(f"scope '{self.name}' is already open; create a new baton.scope")
        stack = self._stack = current_stack()
        self.handle = stack.push(
            self.name,
            category=self.category,
            input=self.input,
            metadata=self.metadata,
            attributes=self.attributes,
            category_profile=self.category_profile,
            data_schema=self.data_schema,
            parent=_handle(self.parent),
        )
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        stack, handle = self._stack, self.handle
        assert stack is not None and handle is not None
        stack.pop(handle, output=self.output, metadata=self.end_metadata, error=exc)

    async def __aenter__(self) -> "scope":
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        template = self
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                async with template._clone():
                    return await fn(*args, **kwargs)

            return cast(F, awrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with template._clone():
                return fn(*args, **kwargs)

        return cast(F, wrapper)


# ----- marks ----------------------------------------------------------------------------------


def mark(
    name: str,
    data: Any = None,
    *,
    metadata: Optional[Mapping[str, Any]] = None,
    parent: Optional[ScopeRef] = None,
    category: Optional[str] = None,
    category_profile: Optional[Mapping[str, Any]] = None,
    data_schema: Optional[Mapping[str, str]] = None,
) -> None:
    """Emits a mark (a point in time) under ``parent`` or the current scope."""
    current_stack().mark(
        name,
        data,
        metadata=metadata,
        parent=_handle(parent) if parent is not None else None,
        category=category,
        category_profile=category_profile,
        data_schema=data_schema,
    )


def metric(
    name: str, measurements: Union[float, Sequence[Mapping[str, Any]]], *, unit: Optional[str] = None
) -> None:
    """Emits a metric mark: a number, or a list of ``{"value": number, "attributes"?: {...}}``."""
    current_stack().metric(name, cast(Any, measurements), unit=unit)


# ----- managed calls --------------------------------------------------------------------------

ToolCallback = Callable[[Any], Any]
"""A tool callback: receives the (intercepted) args, returns the result; may be ``async def``."""


def tool(  # noqa: F811 - replaced by the native entry point below (same signature)
    name: str,
    args: Any,
    fn: ToolCallback,
    *,
    tool_call_id: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Optional[ScopeRef] = None,
) -> Any:
    """Runs ``fn(args)`` as a managed tool call (guardrails, intercepts, events)."""
    _not_nested("a managed tool call")
    if tool_call_id is None and metadata is None and attributes is None and parent is None:
        return current_stack().tool(name, args, fn)  # the common case: no keyword matching
    return current_stack().tool(
        name,
        args,
        fn,
        tool_call_id=tool_call_id,
        metadata=metadata,
        attributes=attributes,
        parent=_handle(parent) if parent is not None else None,
    )


if not TYPE_CHECKING:
    # The same function in Rust (crates/python/src/facade.rs): the current-stack lookup and
    # the middleware check cost more in Python than the managed call itself.
    tool = _native.tool  # noqa: F811


_tool_enter = _native.tool_enter
_HostCall = _native.HostCall
_llm_stream_enter = _native.llm_stream_enter
_llm_enter = _native.llm_enter
_check_result = _native.check_result
_CoroutineType = types.CoroutineType
_PLAIN = frozenset((dict, list, str, int, float, bool, type(None)))


async def tool_async(
    name: str,
    args: Any,
    fn: ToolCallback,
    *,
    tool_call_id: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Optional[ScopeRef] = None,
) -> Any:
    """The asyncio form of :func:`tool`; ``fn`` and middleware may be coroutine functions."""
    # Entered natively; while no middleware needs the values (nothing registered, or only
    # subscribers), the callback runs and is awaited right here on the caller's own objects.
    h = _tool_enter(name, args, tool_call_id, metadata, attributes, parent, fn)
    if h is True:  # nothing registered: no events
        r = fn(args)
        if r.__class__ is _CoroutineType or (r.__class__ not in _PLAIN and inspect.isawaitable(r)):
            r = await r
        return _check_result(r)
    if h.__class__ is not _HostCall:
        # Middleware needs the values: the call through the core's pipeline, driven here.
        return await cast(Awaitable[Any], h)
    # `_host_run` inlined: one coroutine frame less is 5% of this call (same-process A/B).
    call = h
    try:
        r = fn(args)
        if r.__class__ is _CoroutineType or (r.__class__ not in _PLAIN and inspect.isawaitable(r)):
            r = await r
    except Exception as e:
        call.fail(e)
        raise
    except BaseException:
        # Cancellation or interpreter exit: the call ends as cancelled.
        call.cancel()
        raise
    return call.exit(r)


async def _host_run(call: Any, fn: Callable[[Any], Any], arg: Any) -> Any:
    """Runs (and awaits) the callback of a host-run call in the caller's task, then ends the
    call (a ``HostCall``) with its outcome."""
    try:
        r = fn(arg)
        if r.__class__ is _CoroutineType or (r.__class__ not in _PLAIN and inspect.isawaitable(r)):
            r = await r
    except Exception as e:
        call.fail(e)
        raise
    except BaseException:
        # Cancellation or interpreter exit: the call ends as cancelled.
        call.cancel()
        raise
    return call.exit(r)


def tool_fn(
    name: Optional[str] = None,
    *,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
) -> Callable[[F], F]:
    """Decorator: every call of the function becomes a managed tool call.

    The call's arguments, bound to the function's parameter names, are the tool's args (so
    they must be JSON data), and the return value is the result. ``async def`` functions
    become :func:`tool_async` calls.
    """

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)
        tool_name = name or fn.__name__

        def bind(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                return await tool_async(
                    tool_name, bind(args, kwargs), lambda a: fn(**a), metadata=metadata, attributes=attributes
                )

            return cast(F, awrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return tool(
                tool_name, bind(args, kwargs), lambda a: fn(**a), metadata=metadata, attributes=attributes
            )

        return cast(F, wrapper)

    return decorate


def llm(
    name: str,
    request: Mapping[str, Any],
    fn: Callable[[Dict[str, Any]], Any],
    *,
    model_name: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Optional[ScopeRef] = None,
    codec: Optional[str] = None,
    response_codec: Optional[str] = None,
) -> Any:
    """Runs ``fn(request)`` as a managed LLM call; ``request`` is ``{"headers", "content"}``."""
    _not_nested("a managed LLM call")
    return current_stack().llm(
        name,
        request,
        fn,
        model_name=model_name,
        metadata=metadata,
        attributes=attributes,
        parent=_handle(parent) if parent is not None else None,
        codec=codec,
        response_codec=response_codec,
    )


async def llm_async(
    name: str,
    request: Mapping[str, Any],
    fn: Callable[[Dict[str, Any]], Any],
    *,
    model_name: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Optional[ScopeRef] = None,
    codec: Optional[str] = None,
    response_codec: Optional[str] = None,
) -> Any:
    """The asyncio form of :func:`llm`."""
    # Entered natively; while no middleware or codec needs the values (only subscribers), the
    # callback runs and is awaited right here, as in :func:`tool_async`.
    h = _llm_enter(name, request, model_name, metadata, attributes, parent, codec, response_codec)
    if h.__class__ is tuple:
        return await _host_run(h[0], fn, h[1])
    return await cast(Stack, h).llm_async(
        name,
        request,
        fn,
        model_name=model_name,
        metadata=metadata,
        attributes=attributes,
        parent=_handle(parent) if parent is not None else None,
        codec=codec,
        response_codec=response_codec,
    )


def llm_stream(
    name: str,
    request: Mapping[str, Any],
    fn: Callable[[Dict[str, Any]], Iterable[Any]],
    *,
    model_name: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Optional[ScopeRef] = None,
    chunk_marks: bool = True,
    codec: Optional[str] = None,
    response_codec: Optional[str] = None,
) -> LlmStream:
    """Starts a managed streaming LLM call; ``fn(request)`` returns an iterable of chunks
    (a generator is pulled lazily). Iterate the returned stream; closing it early ends the
    call as cancelled."""
    _not_nested("a managed LLM call")
    return current_stack().llm_stream(
        name,
        request,
        fn,
        model_name=model_name,
        metadata=metadata,
        attributes=attributes,
        parent=_handle(parent) if parent is not None else None,
        chunk_marks=chunk_marks,
        codec=codec,
        response_codec=response_codec,
    )


async def llm_stream_async(
    name: str,
    request: Mapping[str, Any],
    fn: Callable[[Dict[str, Any]], Union[Iterable[Any], AsyncIterable[Any], Awaitable[Any]]],
    *,
    model_name: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Optional[ScopeRef] = None,
    chunk_marks: bool = True,
    codec: Optional[str] = None,
    response_codec: Optional[str] = None,
) -> LlmStream:
    """The asyncio form of :func:`llm_stream`: ``fn`` may be an async generator function
    (or return an async iterable); consume the result with ``async for``."""
    s = _llm_stream_enter(
        name, request, model_name, metadata, attributes, parent, chunk_marks, codec, response_codec
    )
    if isinstance(s, Stack):
        return cast(
            LlmStream,
            await s.llm_stream_async(
                name,
                request,
                fn,
                model_name=model_name,
                metadata=metadata,
                attributes=attributes,
                parent=_handle(parent) if parent is not None else None,
                chunk_marks=chunk_marks,
                codec=codec,
                response_codec=response_codec,
            ),
        )
    # No middleware sees the values: the chunks are pulled by the stream itself, as objects.
    stream, req = s
    stream._push()
    try:
        src = fn(req)
        if src.__class__ is _CoroutineType or (src.__class__ not in _PLAIN and inspect.isawaitable(src)):
            src = await src
    except Exception as e:
        stream._pop()
        stream._fail(e)
        raise
    except BaseException:
        stream._pop()
        stream.close()
        raise
    stream._pop()
    stream._set_source(src)
    return stream


# ----- manual lifecycle and standalone helpers ----------------------------------------------


def tool_start(
    name: str,
    args: Any,
    *,
    tool_call_id: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Optional[ScopeRef] = None,
) -> CallHandle:
    """Emits a tool start for a call the framework runs itself; end it with :func:`tool_end`."""
    return current_stack().tool_start(
        name,
        args,
        tool_call_id=tool_call_id,
        metadata=metadata,
        attributes=attributes,
        parent=_handle(parent) if parent is not None else None,
    )


def tool_end(
    handle: CallHandle,
    result: Any = None,
    *,
    metadata: Optional[Mapping[str, Any]] = None,
    error: Union[BaseException, str, None] = None,
) -> None:
    """Ends a call started with :func:`tool_start` (``error`` ends it with ERROR status)."""
    handle.end(result, metadata=metadata, error=error)


def llm_start(
    name: str,
    request: Mapping[str, Any],
    *,
    model_name: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Optional[ScopeRef] = None,
    codec: Optional[str] = None,
    response_codec: Optional[str] = None,
) -> CallHandle:
    """Emits an LLM start for a call the framework runs itself; end it with :func:`llm_end`."""
    return current_stack().llm_start(
        name,
        request,
        model_name=model_name,
        metadata=metadata,
        attributes=attributes,
        parent=_handle(parent) if parent is not None else None,
        codec=codec,
        response_codec=response_codec,
    )


def llm_end(
    handle: CallHandle,
    response: Any = None,
    *,
    metadata: Optional[Mapping[str, Any]] = None,
    error: Union[BaseException, str, None] = None,
) -> None:
    """Ends a call started with :func:`llm_start`."""
    handle.end(response, metadata=metadata, error=error)


def tool_conditional_execution(name: str, args: Any) -> None:
    """Runs only the tool guardrails; raises :class:`GuardrailRejected` on a rejection."""
    _not_nested("a standalone helper")
    current_stack().tool_conditional_execution(name, args)


def llm_conditional_execution(name: str, request: Mapping[str, Any]) -> None:
    """Runs only the LLM guardrails; raises :class:`GuardrailRejected` on a rejection."""
    _not_nested("a standalone helper")
    current_stack().llm_conditional_execution(name, request)


def tool_request_intercepts(name: str, args: Any) -> Any:
    """Runs only the tool request intercepts and returns the rewritten args."""
    _not_nested("a standalone helper")
    return current_stack().tool_request_intercepts(name, args)


def llm_request_intercepts(name: str, request: Mapping[str, Any]) -> Any:
    """Runs only the LLM request intercepts and returns the rewritten request."""
    _not_nested("a standalone helper")
    return current_stack().llm_request_intercepts(name, request)


async def tool_conditional_execution_async(name: str, args: Any) -> None:
    """The asyncio form of :func:`tool_conditional_execution`."""
    _not_nested("a standalone helper")
    await current_stack().tool_conditional_execution_async(name, args)


async def llm_conditional_execution_async(name: str, request: Mapping[str, Any]) -> None:
    """The asyncio form of :func:`llm_conditional_execution`."""
    _not_nested("a standalone helper")
    await current_stack().llm_conditional_execution_async(name, request)


async def tool_request_intercepts_async(name: str, args: Any) -> Any:
    """The asyncio form of :func:`tool_request_intercepts`."""
    _not_nested("a standalone helper")
    return await current_stack().tool_request_intercepts_async(name, args)


async def llm_request_intercepts_async(name: str, request: Mapping[str, Any]) -> Any:
    """The asyncio form of :func:`llm_request_intercepts`."""
    _not_nested("a standalone helper")
    return await current_stack().llm_request_intercepts_async(name, request)


# ----- middleware, subscribers, delivery ----------------------------------------------------


def _is_async(fn: Callable[..., Any]) -> bool:
    target = fn.func if isinstance(fn, functools.partial) else fn
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)
    )


def register(
    kind: str,
    name: str,
    fn: Callable[..., Any],
    *,
    priority: int = 0,
    scope: Optional[ScopeRef] = None,
    break_chain: bool = False,
) -> None:
    """Registers ``fn`` as middleware of family ``kind`` (see :data:`FAMILIES`), globally or
    on ``scope`` (scope-local: removed when the scope ends).

    Callback shapes: guardrails ``(info, input) -> True | None | False | reason``; request
    intercepts ``(info, input) -> input``; execution intercepts ``(ctx, input, next) -> result``;
    stream intercepts ``(ctx, chunks) -> iterable``; payload sanitizers ``(info, payload) ->
    payload | None``; event sanitizers ``(info, data, metadata) -> (data, metadata) | None``;
    metadata injectors ``(info) -> dict``; subscribers ``(event: Event) -> None``. Guardrails,
    request and execution intercepts may be coroutine functions.
    """
    _native.register(
        kind,
        name,
        fn,
        priority=priority,
        scope=_handle(scope) if scope is not None else None,
        break_chain=break_chain,
        is_async=_is_async(fn),
    )


def deregister(kind: str, name: str, *, scope: Optional[ScopeRef] = None) -> bool:
    """Removes a registration; ``False`` when nothing of that name was registered there."""
    return _native.deregister(kind, name, scope=_handle(scope) if scope is not None else None)


def subscribe(
    name: str,
    fn: Callable[[Event], None],
    *,
    priority: int = 0,
    scope: Optional[ScopeRef] = None,
) -> None:
    """Registers a subscriber: ``fn(event)`` receives every visible event, on Baton's delivery
    thread, in emission order. The :class:`Event` is a read-only mapping of the ATOF fields
    (``event["name"]``, ``event.get("scope_category")``), built only when read; ``to_dict()``
    and ``to_json()`` give the whole object."""
    register("subscriber", name, fn, priority=priority, scope=scope)


def middleware(
    kind: str,
    name: Optional[str] = None,
    *,
    priority: int = 0,
    scope: Optional[ScopeRef] = None,
    break_chain: bool = False,
) -> Callable[[F], F]:
    """Decorator form of :func:`register` (the name defaults to the function's name)."""

    def decorate(fn: F) -> F:
        register(kind, name or fn.__name__, fn, priority=priority, scope=scope, break_chain=break_chain)
        return fn

    return decorate


def flush(timeout: float = 30.0) -> bool:
    """Waits until every event emitted so far has been delivered; ``False`` on timeout."""
    _not_nested("flush")
    return _native.flush(timeout)


def shutdown(timeout: float = 30.0) -> bool:
    """Flushes and stops delivery; afterwards emitting or registering raises
    :class:`AlreadyShutdownError`."""
    _not_nested("shutdown")
    return _native.shutdown(timeout)


def is_shutdown() -> bool:
    """True once :func:`shutdown` has been called."""
    return _native.is_shutdown()


def diagnostics() -> Dict[str, int]:
    """Delivery counters: ``delivered_events``, ``dropped_events``, ``subscriber_failures``,
    ``middleware_failures``, ``queued``."""
    return _native.diagnostics()


def configure(*, queue_capacity: int = 65536, overflow: str = "block") -> None:
    """Sets the delivery queue's capacity and overflow policy (``"block"`` or ``"drop"``);
    only before Baton is first used (else :class:`AlreadyExistsError`)."""
    _native.configure(queue_capacity=queue_capacity, overflow=overflow)


def _flush_at_exit() -> None:
    # Deliver what is still queued before the interpreter goes away (subscribers are Python).
    if not _native.is_shutdown():
        try:
            _native.flush(5.0)
        except BatonError:
            pass


atexit.register(_flush_at_exit)

_native.install_facade(_CURRENT, _in_middleware, current_stack, _handle, _get_running_loop, _current_task)
