package baton

import (
	"errors"
	"fmt"
)

// Kind is one of Baton's error kinds, the same vocabulary in every language.
type Kind string

// The error kinds (DESIGN.md §2.9).
const (
	KindInvalidArgument   Kind = "invalid_argument"
	KindInvalidState      Kind = "invalid_state"
	KindNotFound          Kind = "not_found"
	KindAlreadyExists     Kind = "already_exists"
	KindGuardrailRejected Kind = "guardrail_rejected"
	KindCallbackFailed    Kind = "callback_failed"
	KindUpstream          Kind = "upstream"
	KindTimeout           Kind = "timeout"
	KindAlreadyShutdown   Kind = "already_shutdown"
	KindInternal          Kind = "internal"
)

// kinds in status order: status i (1-based) is kinds[i-1].
var kinds = [...]Kind{
	KindInvalidArgument, KindInvalidState, KindNotFound, KindAlreadyExists, KindGuardrailRejected,
	KindCallbackFailed, KindUpstream, KindTimeout, KindAlreadyShutdown, KindInternal,
}

func kindOf(status int) Kind {
	if status >= 1 && status <= len(kinds) {
		return kinds[status-1]
	}
	return KindInternal
}

func statusOf(k Kind) int {
	for i, kk := range kinds {
		if kk == k {
			return i + 1
		}
	}
	return 6 // callback_failed
}

// Error is a Baton error: a kind and a message. When a Go callback's own error caused it,
// Unwrap returns that error, so errors.Is and errors.As reach it.
type Error struct {
	Kind    Kind
	Message string
	// Err is the Go error a callback returned, when this error came from it.
	Err error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "baton: " + string(e.Kind)
	}
	return fmt.Sprintf("baton: %s: %s", e.Kind, e.Message)
}

// Unwrap returns the callback's own error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of the same kind (ErrNotFound, ...): errors.Is(err, baton.ErrNotFound).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Kind == e.Kind
}

// Sentinels, one per kind, for errors.Is.
var (
	ErrInvalidArgument   = &Error{Kind: KindInvalidArgument}
	ErrInvalidState      = &Error{Kind: KindInvalidState}
	ErrNotFound          = &Error{Kind: KindNotFound}
	ErrAlreadyExists     = &Error{Kind: KindAlreadyExists}
	ErrGuardrailRejected = &Error{Kind: KindGuardrailRejected}
	ErrCallbackFailed    = &Error{Kind: KindCallbackFailed}
	ErrUpstream          = &Error{Kind: KindUpstream}
	ErrTimeout           = &Error{Kind: KindTimeout}
	ErrAlreadyShutdown   = &Error{Kind: KindAlreadyShutdown}
	ErrInternal          = &Error{Kind: KindInternal}
)

// KindOf returns the Baton kind of err: its own for a *Error, callback_failed for any other
// non-nil error, "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var be *Error
	if errors.As(err, &be) {
		return be.Kind
	}
	return KindCallbackFailed
}

// attachCause links the error a call returned to the Go error a callback raised, when the
// runtime passed that error through unchanged.
func attachCause(err error, cause error) error {
	if err == nil || cause == nil {
		return err
	}
	be, ok := err.(*Error)
	if !ok {
		return err
	}
	var ce *Error
	if errors.As(cause, &ce) {
		if ce.Kind == be.Kind && ce.Message == be.Message {
			return cause
		}
		return err
	}
	if be.Kind == KindCallbackFailed && be.Message == cause.Error() {
		be.Err = cause
	}
	return err
}
