"""Baton's error classes: one per error kind (DESIGN.md §2.9), all subclasses of BatonError."""

from __future__ import annotations

import builtins
from typing import Any, ClassVar, Dict, Optional, Type

__all__ = [
    "AlreadyExistsError",
    "AlreadyShutdownError",
    "BatonError",
    "CallbackFailedError",
    "GuardrailRejected",
    "InternalError",
    "InvalidArgumentError",
    "InvalidStateError",
    "NotFoundError",
    "TimeoutError",
    "UpstreamError",
]


class BatonError(Exception):
    """An error reported by the Baton runtime. ``kind`` is the canonical error kind."""

    kind: ClassVar[str] = "internal"

    def __init__(self, message: str = "", *args: Any) -> None:
        super().__init__(message, *args)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgumentError(BatonError, ValueError):
    """An argument was malformed (for example a payload that is not plain JSON data)."""

    kind = "invalid_argument"


class InvalidStateError(BatonError):
    """The call is not allowed now (for example a managed call from inside middleware)."""

    kind = "invalid_state"


class NotFoundError(BatonError, LookupError):
    """A scope, call or registration does not exist (or has already ended)."""

    kind = "not_found"


class AlreadyExistsError(BatonError):
    """A registration of that name already exists."""

    kind = "already_exists"


class GuardrailRejected(BatonError):
    """A conditional-execution guardrail rejected the call.

    ``reason`` is the guardrail's reason and ``guardrail`` its registered name.
    """

    kind = "guardrail_rejected"
    reason: Optional[str] = None
    guardrail: Optional[str] = None


class CallbackFailedError(BatonError):
    """A callback or middleware failed (raised only when the original exception is not at hand)."""

    kind = "callback_failed"


class UpstreamError(BatonError):
    """An upstream service failed."""

    kind = "upstream"


class TimeoutError(BatonError, builtins.TimeoutError):  # noqa: A001 - Baton's kind name
    """An operation timed out."""

    kind = "timeout"


class AlreadyShutdownError(BatonError):
    """The runtime has been shut down."""

    kind = "already_shutdown"


class InternalError(BatonError):
    """A bug in Baton (or a panic in native code), reported instead of crashing."""

    kind = "internal"


_BY_KIND: Dict[str, Type[BatonError]] = {
    cls.kind: cls
    for cls in (
        InvalidArgumentError,
        InvalidStateError,
        NotFoundError,
        AlreadyExistsError,
        GuardrailRejected,
        CallbackFailedError,
        UpstreamError,
        TimeoutError,
        AlreadyShutdownError,
        InternalError,
    )
}
