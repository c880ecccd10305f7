package baton

/*
#include "glue.h"
*/
import "C"

import (
	"encoding/json"
	"reflect"
	"runtime"
	"runtime/cgo"
)

// Family is a middleware family's canonical name.
type Family string

// The middleware families (DESIGN.md §2.4).
const (
	FamilyToolConditionalExecution    Family = "tool_conditional_execution"
	FamilyToolRequestIntercept        Family = "tool_request_intercept"
	FamilyToolExecutionIntercept      Family = "tool_execution_intercept"
	FamilyToolSanitizeRequest         Family = "tool_sanitize_request"
	FamilyToolSanitizeResponse        Family = "tool_sanitize_response"
	FamilyLLMConditionalExecution     Family = "llm_conditional_execution"
	FamilyLLMRequestIntercept         Family = "llm_request_intercept"
	FamilyLLMExecutionIntercept       Family = "llm_execution_intercept"
	FamilyLLMStreamExecutionIntercept Family = "llm_stream_execution_intercept"
	FamilyLLMSanitizeRequest          Family = "llm_sanitize_request"
	FamilyLLMSanitizeResponse         Family = "llm_sanitize_response"
	FamilyMarkSanitize                Family = "mark_sanitize"
	FamilyScopeSanitizeStart          Family = "scope_sanitize_start"
	FamilyScopeSanitizeEnd            Family = "scope_sanitize_end"
	FamilyEventMetadataInjector       Family = "event_metadata_injector"
	FamilySubscriber                  Family = "subscriber"
)

// CallInfo describes the managed call middleware is looking at.
type CallInfo struct {
	Kind       string `json:"kind"` // "tool" or "llm"
	Name       string `json:"name"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	ModelName  string `json:"model_name,omitempty"`
	ParentUUID string `json:"parent_uuid,omitempty"`
	UUID       string `json:"uuid,omitempty"` // empty before the start event
}

// EventInfo describes the event that event middleware is looking at.
type EventInfo struct {
	Kind          string `json:"kind"`                     // "scope" or "mark"
	ScopeCategory string `json:"scope_category,omitempty"` // "start" or "end" for scopes
	UUID          string `json:"uuid"`
	ParentUUID    string `json:"parent_uuid,omitempty"`
	Name          string `json:"name"`
	Category      string `json:"category,omitempty"`
}

// Decision is a guardrail's verdict.
type Decision struct {
	Rejected bool
	Reason   string
}

// Allow lets the call run.
func Allow() Decision { return Decision{} }

// Reject stops the call with reason.
func Reject(reason string) Decision { return Decision{Rejected: true, Reason: reason} }

// GuardrailFunc decides whether a call may run (conditional execution).
type GuardrailFunc func(call CallInfo, input json.RawMessage) (Decision, error)

// RequestInterceptFunc rewrites the real args or request.
type RequestInterceptFunc func(call CallInfo, input json.RawMessage) (json.RawMessage, error)

// Next runs the rest of an execution chain and the callback. It may be called zero, one or
// several times, but only until the intercept returns.
type Next func(input json.RawMessage) (json.RawMessage, error)

// CallContext is what an execution intercept knows about its call.
type CallContext struct {
	Info CallInfo
	next *C.BatonNext
	done *bool
}

// QueueMark queues a mark emitted right after the call's end event, parented under the call.
func (c *CallContext) QueueMark(name string, data any, metadata map[string]any) error {
	if *c.done {
		return &Error{Kind: KindInvalidState, Message: "QueueMark: the intercept has returned"}
	}
	d, err := marshalArg("data", data)
	if err != nil {
		return err
	}
	var m []byte
	if metadata != nil {
		if m, err = marshalArg("metadata", metadata); err != nil {
			return err
		}
	}
	var msg *C.char
	return check(C.go_next_queue_mark(c.next, cbytes(name), cjson(d), optJSON(m), &msg), msg)
}

// ExecutionInterceptFunc wraps the callback of a call (lowest priority outermost).
type ExecutionInterceptFunc func(call *CallContext, input json.RawMessage, next Next) (json.RawMessage, error)

// StreamInterceptFunc wraps a stream's chunk source lazily; return inner for no change.
type StreamInterceptFunc func(call CallInfo, inner ChunkSource) (ChunkSource, error)

// SanitizerFunc rewrites the payload an event carries (never the real one). Returning nil
// omits the payload.
type SanitizerFunc func(call CallInfo, payload json.RawMessage) (json.RawMessage, error)

// EventFields are the parts of an event an event sanitizer may rewrite.
type EventFields struct {
	Data     json.RawMessage `json:"data"`
	Metadata map[string]any  `json:"metadata"`
}

// EventSanitizerFunc rewrites an event's data and metadata. Returning nil omits the data.
type EventSanitizerFunc func(event EventInfo, fields EventFields) (*EventFields, error)

// MetadataInjectorFunc returns flat dotted keys added to an event's metadata (never overwriting).
type MetadataInjectorFunc func(event EventInfo) (map[string]any, error)

// SubscriberFunc receives every visible event as ATOF JSON, on Baton's dispatcher, in order.
type SubscriberFunc func(event json.RawMessage) error

// Middleware is one named piece of middleware or a subscriber, ready to Register.
type Middleware struct {
	Family Family
	Name   string
	fn     any
}

func mw(f Family, name string, fn any) Middleware { return Middleware{Family: f, Name: name, fn: fn} }

// ToolGuardrail is a tool_conditional_execution guardrail.
func ToolGuardrail(name string, fn GuardrailFunc) Middleware {
	return mw(FamilyToolConditionalExecution, name, fn)
}

// LLMGuardrail is an llm_conditional_execution guardrail.
func LLMGuardrail(name string, fn GuardrailFunc) Middleware {
	return mw(FamilyLLMConditionalExecution, name, fn)
}

// ToolRequestIntercept is a tool_request_intercept.
func ToolRequestIntercept(name string, fn RequestInterceptFunc) Middleware {
	return mw(FamilyToolRequestIntercept, name, fn)
}

// LLMRequestIntercept is an llm_request_intercept.
func LLMRequestIntercept(name string, fn RequestInterceptFunc) Middleware {
	return mw(FamilyLLMRequestIntercept, name, fn)
}

// ToolExecutionIntercept is a tool_execution_intercept.
func ToolExecutionIntercept(name string, fn ExecutionInterceptFunc) Middleware {
	return mw(FamilyToolExecutionIntercept, name, fn)
}

// LLMExecutionIntercept is an llm_execution_intercept.
func LLMExecutionIntercept(name string, fn ExecutionInterceptFunc) Middleware {
	return mw(FamilyLLMExecutionIntercept, name, fn)
}

// LLMStreamExecutionIntercept is an llm_stream_execution_intercept.
func LLMStreamExecutionIntercept(name string, fn StreamInterceptFunc) Middleware {
	return mw(FamilyLLMStreamExecutionIntercept, name, fn)
}

// ToolSanitizeRequest sanitizes the args tool start events carry.
func ToolSanitizeRequest(name string, fn SanitizerFunc) Middleware {
	return mw(FamilyToolSanitizeRequest, name, fn)
}

// ToolSanitizeResponse sanitizes the results tool end events carry.
func ToolSanitizeResponse(name string, fn SanitizerFunc) Middleware {
	return mw(FamilyToolSanitizeResponse, name, fn)
}

// LLMSanitizeRequest sanitizes the requests LLM start events carry.
func LLMSanitizeRequest(name string, fn SanitizerFunc) Middleware {
	return mw(FamilyLLMSanitizeRequest, name, fn)
}

// LLMSanitizeResponse sanitizes the responses (and chunks) LLM events carry.
func LLMSanitizeResponse(name string, fn SanitizerFunc) Middleware {
	return mw(FamilyLLMSanitizeResponse, name, fn)
}

// MarkSanitizer is a mark_sanitize event sanitizer.
func MarkSanitizer(name string, fn EventSanitizerFunc) Middleware {
	return mw(FamilyMarkSanitize, name, fn)
}

// ScopeStartSanitizer is a scope_sanitize_start event sanitizer.
func ScopeStartSanitizer(name string, fn EventSanitizerFunc) Middleware {
	return mw(FamilyScopeSanitizeStart, name, fn)
}

// ScopeEndSanitizer is a scope_sanitize_end event sanitizer.
func ScopeEndSanitizer(name string, fn EventSanitizerFunc) Middleware {
	return mw(FamilyScopeSanitizeEnd, name, fn)
}

// MetadataInjector is an event_metadata_injector.
func MetadataInjector(name string, fn MetadataInjectorFunc) Middleware {
	return mw(FamilyEventMetadataInjector, name, fn)
}

// Subscriber receives events.
func Subscriber(name string, fn SubscriberFunc) Middleware { return mw(FamilySubscriber, name, fn) }

// RegisterOption configures a registration.
type RegisterOption func(*regOptions)

type regOptions struct {
	priority   int32
	scope      *Scope
	breakChain bool
}

// Priority orders a registration within its family (lower runs first; for execution
// intercepts, outermost). Default 0.
func Priority(p int32) RegisterOption { return func(o *regOptions) { o.priority = p } }

// OnScope makes a registration scope-local: active for work under s until s ends.
func OnScope(s *Scope) RegisterOption { return func(o *regOptions) { o.scope = s } }

// BreakChain makes a request intercept the last one of its chain to run.
func BreakChain() RegisterOption { return func(o *regOptions) { o.breakChain = true } }

// registered is what a registration's cgo.Handle holds.
type registered struct {
	family Family
	fn     any
}

// Register registers middleware or a subscriber, globally or OnScope. Callbacks may run on
// any goroutine or thread, concurrently.
func (r *Runtime) Register(m Middleware, opts ...RegisterOption) error {
	var o regOptions
	for _, f := range opts {
		f(&o)
	}
	if m.fn == nil || reflect.ValueOf(m.fn).IsNil() {
		return &Error{Kind: KindInvalidArgument, Message: "middleware: nil function (use a constructor such as baton.ToolGuardrail)"}
	}
	var scope C.uint64_t
	if o.scope != nil {
		if o.scope.err != nil {
			return o.scope.err
		}
		scope = C.uint64_t(o.scope.id)
	}
	// The handle is released by Baton through batonGoFree, also when registration fails.
	h := cgo.NewHandle(&registered{family: m.Family, fn: m.fn})
	name := cbytes(m.Name)
	var msg *C.char
	var rc C.int32_t
	switch m.Family {
	case FamilyToolExecutionIntercept, FamilyLLMExecutionIntercept:
		rc = C.go_execution_intercept_register(r.id, cbytes(string(m.Family)), name, C.int32_t(o.priority), scope, C.uintptr_t(h), &msg)
	case FamilyLLMStreamExecutionIntercept:
		rc = C.go_stream_intercept_register(r.id, name, C.int32_t(o.priority), scope, C.uintptr_t(h), &msg)
	case FamilySubscriber:
		rc = C.go_subscriber_register(r.id, name, C.int32_t(o.priority), scope, C.uintptr_t(h), &msg)
	default:
		rc = C.go_middleware_register(r.id, cbytes(string(m.Family)), name, C.int32_t(o.priority), scope, cbool(o.breakChain), C.uintptr_t(h), &msg)
	}
	runtime.KeepAlive(o.scope)
	return check(rc, msg)
}

// Deregister removes a registration (globally, or OnScope); false when none had that name.
func (r *Runtime) Deregister(family Family, name string, opts ...RegisterOption) (bool, error) {
	var o regOptions
	for _, f := range opts {
		f(&o)
	}
	var scope C.uint64_t
	if o.scope != nil {
		scope = C.uint64_t(o.scope.id)
	}
	var removed C.bool
	var msg *C.char
	err := check(C.go_middleware_deregister(r.id, cbytes(string(family)), cbytes(name), scope, &removed, &msg), msg)
	runtime.KeepAlive(o.scope)
	return bool(removed), err
}

// Register registers on the default runtime.
func Register(m Middleware, opts ...RegisterOption) error { return defaultRuntime.Register(m, opts...) }

// Deregister deregisters from the default runtime.
func Deregister(family Family, name string, opts ...RegisterOption) (bool, error) {
	return defaultRuntime.Deregister(family, name, opts...)
}

// setChunkSource hands a Go chunk source to Baton (used by the trampolines).
func setChunkSource(out *C.BatonOut, s *sourceState) C.int32_t {
	h := cgo.NewHandle(s)
	return C.go_out_set_chunk_source(out, C.uintptr_t(h))
}

// nextCall calls baton_next_call.
func nextCall(n *C.BatonNext, input []byte) (json.RawMessage, error) {
	var out, msg *C.char
	if err := check(C.go_next_call(n, cjson(input), &out, &msg), msg); err != nil {
		return nil, err
	}
	return ctakeJSON(out), nil
}

// chunkNext pulls the inner stream of a stream intercept.
func chunkNext(s *C.BatonChunkStream) (json.RawMessage, error) {
	var out, msg *C.char
	if err := check(C.go_chunk_stream_next(s, &out, &msg), msg); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, nil
	}
	return ctakeJSON(out), nil
}
