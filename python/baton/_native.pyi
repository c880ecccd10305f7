"""Type information for ``baton._native``, the PyO3 module (crates/python)."""

from typing import (
    Any,
    AsyncIterator,
    ItemsView,
    Iterator,
    KeysView,
    ValuesView,
    Awaitable,
    Callable,
    Dict,
    Generator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    final,
)

_JSON = Any
_Meta = Optional[Mapping[str, Any]]

__all__ = [
    "Stack",
    "Scope",
    "CallHandle",
    "Pending",
    "LlmStream",
    "Chunks",
    "CallInfo",
    "CallContext",
    "EventInfo",
    "Event",
    "Next",
    "AsyncNext",
    "new_stack",
    "stack_from_propagation",
    "register",
    "deregister",
    "flush",
    "shutdown",
    "is_shutdown",
    "diagnostics",
    "configure",
    "install_facade",
    "tool",
    "tool_enter",
    "check_result",
    "_set_native_awaitables",
    "llm_stream_enter",
    "llm_enter",
    "HostCall",
    "Activation",
    "plugin_validate",
    "plugin_initialize",
    "plugin_clear",
    "plugin_load",
    "register_component",
    "codec_decode_request",
    "codec_encode_request",
    "codec_decode_response",
    "codec_aggregate_stream",
    "ERROR_KINDS",
    "FAMILIES",
]

ERROR_KINDS: List[str]
FAMILIES: List[str]

@final
class Scope:
    """An open (or ended) scope."""

    @property
    def uuid(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def parent_uuid(self) -> Optional[str]: ...
    @property
    def root_uuid(self) -> str: ...
    @property
    def is_ended(self) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class CallHandle:
    """A call started by hand (``tool_start`` / ``llm_start``)."""

    @property
    def uuid(self) -> str: ...
    def end(
        self,
        output: _JSON = None,
        *,
        metadata: _Meta = None,
        error: Union[BaseException, str, None] = None,
    ) -> None: ...

@final
class Pending(Awaitable[Any]):
    """A core future, driven by the awaiting asyncio task."""

    def step(self, ok: bool = True, value: Any = None) -> Tuple[bool, Any]: ...
    def close(self) -> None: ...
    def __await__(self) -> Generator[Any, None, Any]: ...

@final
class LlmStream:
    """A managed LLM stream: iterate it (``for``) or ``async for`` it; ``close()`` ends it."""

    @property
    def uuid(self) -> str: ...
    def __iter__(self) -> "LlmStream": ...
    def __next__(self) -> Any: ...
    def __aiter__(self) -> AsyncIterator[Any]: ...
    def __anext__(self) -> Awaitable[Any]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "LlmStream": ...
    def __exit__(self, *args: object) -> bool: ...
    def _push(self) -> bool: ...
    def _pop(self) -> None: ...
    def _chunk(self, chunk: Any) -> Any: ...
    def _end(self) -> None: ...
    def _fail(self, exception: BaseException) -> None: ...
    def _set_source(self, source: Any) -> None: ...

@final
class Chunks:
    """The inner chunk stream a stream execution intercept wraps."""

    def __iter__(self) -> "Chunks": ...
    def __next__(self) -> Any: ...
    def __aiter__(self) -> "Chunks": ...
    def __anext__(self) -> Pending: ...

@final
class CallInfo:
    """What guardrails, request intercepts and sanitizers know about a call."""

    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def tool_call_id(self) -> Optional[str]: ...
    @property
    def model_name(self) -> Optional[str]: ...
    @property
    def parent_uuid(self) -> Optional[str]: ...
    @property
    def uuid(self) -> Optional[str]: ...

@final
class CallContext:
    """What execution and stream intercepts receive; ``queue_mark`` emits after the end event."""

    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def tool_call_id(self) -> Optional[str]: ...
    @property
    def model_name(self) -> Optional[str]: ...
    @property
    def parent_uuid(self) -> Optional[str]: ...
    @property
    def uuid(self) -> Optional[str]: ...
    def queue_mark(self, name: str, data: _JSON = None, metadata: _Meta = None) -> None: ...

@final
class EventInfo:
    """What event sanitizers and metadata injectors know about an event."""

    @property
    def kind(self) -> str: ...
    @property
    def scope_category(self) -> Optional[str]: ...
    @property
    def uuid(self) -> str: ...
    @property
    def parent_uuid(self) -> Optional[str]: ...
    @property
    def name(self) -> str: ...
    @property
    def category(self) -> Optional[str]: ...

@final
class Next:
    """``next`` of a synchronous execution intercept (valid only while it runs)."""

    def __call__(self, input: _JSON) -> Any: ...

@final
class AsyncNext:
    """``next`` of an async execution intercept: ``await next(input)``."""

    def __call__(self, input: _JSON) -> Awaitable[Any]: ...

@final
class Activation:
    """What a Python plugin component's ``activate`` receives."""

    def register(self, kind: str, name: str, callback: Callable[..., Any], *, priority: int = 0) -> None: ...

@final
class Event:
    """An event as a subscriber receives it: a read-only mapping of the ATOF fields, built
    when first read; ``to_dict()`` / ``to_json()`` give the whole object."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def scope_category(self) -> Optional[str]: ...
    @property
    def uuid(self) -> str: ...
    @property
    def parent_uuid(self) -> Optional[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __getitem__(self, key: str, /) -> Any: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def keys(self) -> KeysView[str]: ...
    def values(self) -> ValuesView[Any]: ...
    def items(self) -> ItemsView[str, Any]: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Stack:
    """A stack of open scopes (one per request, task or thread)."""

    @property
    def depth(self) -> int: ...
    def push(
        self,
        name: str,
        *,
        category: str = "function",
        input: _JSON = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        category_profile: _Meta = None,
        data_schema: Optional[Mapping[str, str]] = None,
        parent: Optional[Scope] = None,
    ) -> Scope: ...
    def pop(
        self,
        scope: Scope,
        *,
        output: _JSON = None,
        metadata: _Meta = None,
        error: Union[BaseException, str, None] = None,
    ) -> None: ...
    def mark(
        self,
        name: str,
        data: _JSON = None,
        *,
        metadata: _Meta = None,
        parent: Optional[Scope] = None,
        category: Optional[str] = None,
        category_profile: _Meta = None,
        data_schema: Optional[Mapping[str, str]] = None,
    ) -> None: ...
    def metric(self, name: str, measurements: Any, *, unit: Optional[str] = None) -> None: ...
    def fork(self) -> "Stack": ...
    def current(self) -> Optional[Scope]: ...
    def propagation_context(self) -> Dict[str, Any]: ...
    def traceparent(self) -> str: ...
    def tool(
        self,
        name: str,
        args: _JSON,
        callback: Callable[[Any], Any],
        *,
        tool_call_id: Optional[str] = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        parent: Optional[Scope] = None,
    ) -> Any: ...
    def tool_async(
        self,
        name: str,
        args: _JSON,
        callback: Callable[[Any], Any],
        *,
        tool_call_id: Optional[str] = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        parent: Optional[Scope] = None,
    ) -> Pending: ...
    def llm(
        self,
        name: str,
        request: Mapping[str, Any],
        callback: Callable[[Any], Any],
        *,
        model_name: Optional[str] = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        parent: Optional[Scope] = None,
        codec: Optional[str] = None,
        response_codec: Optional[str] = None,
    ) -> Any: ...
    def llm_async(
        self,
        name: str,
        request: Mapping[str, Any],
        callback: Callable[[Any], Any],
        *,
        model_name: Optional[str] = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        parent: Optional[Scope] = None,
        codec: Optional[str] = None,
        response_codec: Optional[str] = None,
    ) -> Pending: ...
    def llm_stream(
        self,
        name: str,
        request: Mapping[str, Any],
        callback: Callable[[Any], Any],
        *,
        model_name: Optional[str] = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        parent: Optional[Scope] = None,
        chunk_marks: bool = True,
        codec: Optional[str] = None,
        response_codec: Optional[str] = None,
    ) -> LlmStream: ...
    def llm_stream_async(
        self,
        name: str,
        request: Mapping[str, Any],
        callback: Callable[[Any], Any],
        *,
        model_name: Optional[str] = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        parent: Optional[Scope] = None,
        chunk_marks: bool = True,
        codec: Optional[str] = None,
        response_codec: Optional[str] = None,
    ) -> Pending: ...
    def tool_start(
        self,
        name: str,
        args: _JSON,
        *,
        tool_call_id: Optional[str] = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        parent: Optional[Scope] = None,
    ) -> CallHandle: ...
    def llm_start(
        self,
        name: str,
        request: Mapping[str, Any],
        *,
        model_name: Optional[str] = None,
        metadata: _Meta = None,
        attributes: Optional[Sequence[str]] = None,
        parent: Optional[Scope] = None,
        codec: Optional[str] = None,
        response_codec: Optional[str] = None,
    ) -> CallHandle: ...
    def tool_conditional_execution(self, name: str, args: _JSON) -> None: ...
    def llm_conditional_execution(self, name: str, request: Mapping[str, Any]) -> None: ...
    def tool_request_intercepts(self, name: str, args: _JSON) -> Any: ...
    def llm_request_intercepts(self, name: str, request: Mapping[str, Any]) -> Any: ...
    def tool_conditional_execution_async(self, name: str, args: _JSON) -> Pending: ...
    def llm_conditional_execution_async(self, name: str, request: Mapping[str, Any]) -> Pending: ...
    def tool_request_intercepts_async(self, name: str, args: _JSON) -> Pending: ...
    def llm_request_intercepts_async(self, name: str, request: Mapping[str, Any]) -> Pending: ...

def new_stack() -> Stack: ...
def stack_from_propagation(context: Mapping[str, Any]) -> Stack: ...
def register(
    kind: str,
    name: str,
    callback: Callable[..., Any],
    *,
    priority: int = 0,
    scope: Optional[Scope] = None,
    break_chain: bool = False,
    is_async: bool = False,
) -> None: ...
def deregister(kind: str, name: str, *, scope: Optional[Scope] = None) -> bool: ...
def flush(timeout: float = 30.0) -> bool: ...
def shutdown(timeout: float = 30.0) -> bool: ...
def is_shutdown() -> bool: ...
def diagnostics() -> Dict[str, int]: ...
def configure(*, queue_capacity: int = 65536, overflow: str = "block") -> None: ...
def plugin_validate(config: Mapping[str, Any]) -> List[Dict[str, Any]]: ...
def plugin_initialize(config: Mapping[str, Any]) -> Dict[str, Any]: ...
def plugin_clear() -> None: ...
def plugin_load(path: str) -> Dict[str, Any]: ...
def register_component(component: Any) -> None: ...
def codec_decode_request(codec: str, request: Mapping[str, Any]) -> Optional[Dict[str, Any]]: ...
def codec_encode_request(
    codec: str, normalized: Mapping[str, Any], original: Mapping[str, Any]
) -> Optional[Dict[str, Any]]: ...
def codec_decode_response(codec: str, response: Mapping[str, Any]) -> Optional[Dict[str, Any]]: ...
def codec_aggregate_stream(codec: str, chunks: Sequence[Any]) -> Optional[Dict[str, Any]]: ...
def install_facade(
    current: Any,
    in_middleware: Any,
    current_stack: Callable[[], Stack],
    handle: Callable[[Any], Optional[Scope]],
    get_running_loop: Callable[[], Any],
    current_task: Callable[[], Any],
) -> None: ...
def tool(
    name: str,
    args: _JSON,
    fn: Callable[[Any], Any],
    *,
    tool_call_id: Optional[str] = None,
    metadata: _Meta = None,
    attributes: Optional[Sequence[str]] = None,
    parent: Any = None,
) -> Any: ...
def tool_enter(
    name: str,
    args: _JSON,
    tool_call_id: Optional[str],
    metadata: _Meta,
    attributes: Optional[Sequence[str]],
    parent: Any,
    callback: Optional[Callable[[Any], Any]] = None,
) -> Union[bool, "HostCall", Stack, Awaitable[Any]]: ...
def check_result(result: Any) -> Any: ...
def _set_native_awaitables(on: bool) -> None: ...
def llm_stream_enter(
    name: str,
    request: Mapping[str, Any],
    model_name: Optional[str],
    metadata: _Meta,
    attributes: Optional[Sequence[str]],
    parent: Any,
    chunk_marks: bool,
    codec: Optional[str],
    response_codec: Optional[str],
) -> Union[Tuple["LlmStream", Any], Stack]: ...
def llm_enter(
    name: str,
    request: Mapping[str, Any],
    model_name: Optional[str],
    metadata: _Meta,
    attributes: Optional[Sequence[str]],
    parent: Any,
    codec: Optional[str],
    response_codec: Optional[str],
) -> Union[Tuple["HostCall", Any], Stack]: ...
@final
class HostCall:
    def exit(self, result: Any) -> Any: ...
    def fail(self, exception: BaseException) -> None: ...
    def cancel(self) -> None: ...
