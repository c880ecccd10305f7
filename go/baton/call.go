package baton

/*
#include "glue.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/cgo"
	"sync"
)

// ToolFunc is the host callback of a managed tool or LLM call. It receives the (intercepted)
// args or request and returns a JSON-encodable result (json.RawMessage passes through). ctx is
// the caller's context; while the callback runs, the call's own scope is its current scope,
// so nested scopes, marks and calls made with ctx are parented under the call.
type ToolFunc func(ctx context.Context, input json.RawMessage) (any, error)

// ChunkSource yields the chunks of a stream, one per call, and io.EOF at the end.
type ChunkSource func() (json.RawMessage, error)

// StreamFunc is the host callback of a managed LLM stream: it receives the (intercepted)
// request and returns the provider's chunk source, which is pulled lazily.
type StreamFunc func(ctx context.Context, request json.RawMessage) (ChunkSource, error)

// callState is what the C callback of one managed call reaches through its cgo.Handle.
type callState struct {
	ctx    context.Context
	fn     ToolFunc
	stream StreamFunc
	mu     sync.Mutex
	err    error // the last error the Go callback returned
	source *sourceState
}

func (c *callState) setErr(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

func (c *callState) lastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if c.source != nil {
		return c.source.lastErr()
	}
	return nil
}

type callKind int

const (
	callTool callKind = iota
	callLLM
)

func managed(ctx context.Context, kind callKind, name string, input any, fn ToolFunc, opts []Option) (json.RawMessage, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if fn == nil {
		return nil, &Error{Kind: KindInvalidArgument, Message: "callback: nil function"}
	}
	st := stackOf(ctx)
	if st == nil {
		var err error
		if st, err = freshStack(RuntimeOf(ctx)); err != nil {
			return nil, err
		}
		ctx = context.WithValue(ctx, stackKey{}, st)
	}
	in, err := marshalArg("input", input)
	if err != nil {
		return nil, err
	}
	var oj []byte
	var parent uint64
	if len(opts) > 0 {
		o := collect(opts)
		if kind == callTool {
			oj, err = o.json("tool_call_id", "metadata", "attributes")
		} else {
			oj, err = o.json("model_name", "metadata", "attributes", "codec", "response_codec")
		}
		if err != nil {
			return nil, err
		}
		parent = o.parentID()
		defer runtime.KeepAlive(o.parent)
	}
	if kind == callTool {
		// Run the function here, without a callback from C, unless middleware sees the values.
		r := C.go_tool_enter_n(C.uint64_t(st.id), strData(name), C.size_t(len(name)), bytesData(in), C.size_t(len(in)), optJSON(oj), C.uint64_t(parent))
		runtime.KeepAlive(st)
		if err := check(r.rc, r.err); err != nil {
			return nil, err
		}
		if r.bare {
			return runBare(ctx, in, fn)
		}
		if r.call != 0 {
			return runEntered(ctx, r.call, in, fn)
		}
	}
	cs := &callState{ctx: ctx, fn: fn}
	h := cgo.NewHandle(cs)
	defer h.Delete()
	var out, msg *C.char
	var rc C.int32_t
	if kind == callTool {
		rc = C.go_tool_execute(C.uint64_t(st.id), cbytes(name), cjson(in), optJSON(oj), C.uint64_t(parent), C.uintptr_t(h), &out, &msg)
	} else {
		rc = C.go_llm_execute(C.uint64_t(st.id), cbytes(name), cjson(in), optJSON(oj), C.uint64_t(parent), C.uintptr_t(h), &out, &msg)
	}
	runtime.KeepAlive(st)
	if err := check(rc, msg); err != nil {
		return nil, attachCause(err, cs.lastErr())
	}
	return ctakeJSON(out), nil
}

// runBare is a tool call with nothing registered anywhere: the core would only run the
// callback (no scope, no event), so it is called here, without crossing into C and back.
// Results and errors are what the managed path gives.
func runBare(ctx context.Context, in []byte, fn ToolFunc) (json.RawMessage, error) {
	b, _, err := runGuarded(ctx, in, fn)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, &Error{Kind: KindInvalidArgument, Message: "result_json: invalid JSON"}
	}
	return b, nil
}

// runEntered runs the function of a tool call that baton_tool_enter opened (only
// subscribers see it: the events are emitted, the call's scope is on the stack) and ends it
// with the result or the error, as baton_tool_execute would.
func runEntered(ctx context.Context, call C.uint64_t, in []byte, fn ToolFunc) (json.RawMessage, error) {
	b, fnErr, err := runGuarded(ctx, in, fn)
	if err != nil {
		if fnErr == nil {
			fnErr = err // a panic or a result that is not JSON-encodable
		}
		exitFailed(call, fnErr) // the event records the function's own error and type
		return nil, err
	}
	r := C.go_tool_exit_n(call, bytesData(b), C.size_t(len(b)), 0, nil, nil)
	if err := check(r.rc, r.err); err != nil {
		return nil, err
	}
	return b, nil
}

// exitFailed ends an entered call as failed by the function's error.
func exitFailed(call C.uint64_t, failure error) {
	kind, m := KindCallbackFailed, failure.Error()
	var be *Error
	if errors.As(failure, &be) {
		kind, m = be.Kind, be.Message
	}
	r := C.go_tool_exit_n(call, nil, 0, C.int32_t(statusOf(kind)), cbytes(m), cbytes(fmt.Sprintf("%T", failure)))
	_ = check(r.rc, r.err)
}

// runGuarded calls fn and marshals its result. err is what the caller gets (as on the managed
// path); fnErr is the function's own error when that caused it. A panic in fn (or in
// marshalling its result) becomes an internal error.
func runGuarded(ctx context.Context, in []byte, fn ToolFunc) (b json.RawMessage, fnErr, err error) {
	defer func() {
		if p := recover(); p != nil {
			b, fnErr, err = nil, nil, &Error{Kind: KindInternal, Message: fmt.Sprint("panic: ", p)}
		}
	}()
	v, fnErr := fn(ctx, json.RawMessage(in))
	if fnErr != nil {
		return nil, fnErr, callbackError(fnErr)
	}
	b, merr := marshal(v)
	if merr != nil {
		return nil, nil, &Error{Kind: KindCallbackFailed, Message: "result: " + merr.Error()}
	}
	return b, nil, nil
}

// callbackError is the error a caller gets for its function's error, as on the managed path:
// a *Error keeps its kind; anything else is callback_failed with the error as its cause.
func callbackError(err error) error {
	var be *Error
	if errors.As(err, &be) {
		return err
	}
	return &Error{Kind: KindCallbackFailed, Message: err.Error(), Err: err}
}

// Tool runs a managed tool call under ctx's current scope: guardrails, request intercepts,
// start event, execution intercepts around fn, end event. It returns fn's real result.
// Options: ToolCallID, Metadata, Attributes, Parent.
func Tool(ctx context.Context, name string, args any, fn ToolFunc, opts ...Option) (json.RawMessage, error) {
	return managed(ctx, callTool, name, args, fn, opts)
}

// LLM runs a managed LLM call; request is {"headers": {...}, "content": <provider JSON>}.
// Options: ModelName, Metadata, Attributes, Parent, Codec, ResponseCodec.
func LLM(ctx context.Context, name string, request any, fn ToolFunc, opts ...Option) (json.RawMessage, error) {
	return managed(ctx, callLLM, name, request, fn, opts)
}

// sourceState is a Go chunk source handed to Baton (owned by it through a cgo.Handle).
type sourceState struct {
	next ChunkSource
	mu   sync.Mutex
	err  error
}

func (s *sourceState) lastErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stream is a managed LLM stream. Read it with Next until io.EOF; Close it when done (closing
// an unfinished stream ends the call as cancelled). Use it from one goroutine at a time.
type Stream struct {
	id     uint64
	state  *callState
	mu     sync.Mutex
	closed bool
}

// LLMStream starts a managed streaming LLM call: fn runs now and returns the provider's chunk
// source; each Next pulls one chunk through the stream execution intercepts.
// Options: ModelName, Metadata, Attributes, Parent, ChunkMarks, Codec, ResponseCodec.
func LLMStream(ctx context.Context, name string, request any, fn StreamFunc, opts ...Option) (*Stream, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if fn == nil {
		return nil, &Error{Kind: KindInvalidArgument, Message: "callback: nil function"}
	}
	st, err := stackFor(ctx)
	if err != nil {
		return nil, err
	}
	if stackOf(ctx) != st {
		ctx = context.WithValue(ctx, stackKey{}, st)
	}
	in, err := marshalArg("request", request)
	if err != nil {
		return nil, err
	}
	o := collect(opts)
	oj, err := o.json("model_name", "metadata", "attributes", "chunk_marks", "codec", "response_codec")
	if err != nil {
		return nil, err
	}
	cs := &callState{ctx: ctx, stream: fn}
	h := cgo.NewHandle(cs)
	defer h.Delete()
	var id C.uint64_t
	var msg *C.char
	rc := C.go_llm_stream_start(C.uint64_t(st.id), cbytes(name), cjson(in), optJSON(oj), C.uint64_t(o.parentID()), C.uintptr_t(h), &id, &msg)
	runtime.KeepAlive(st)
	runtime.KeepAlive(o.parent)
	if err := check(rc, msg); err != nil {
		return nil, attachCause(err, cs.lastErr())
	}
	s := &Stream{id: uint64(id), state: cs}
	runtime.SetFinalizer(s, func(s *Stream) { _ = s.Close() })
	return s, nil
}

// Next returns the next chunk, or io.EOF when the stream has ended.
func (s *Stream) Next() (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, io.EOF
	}
	var out, msg *C.char
	if err := check(C.go_llm_stream_next(C.uint64_t(s.id), &out, &msg), msg); err != nil {
		return nil, attachCause(err, s.state.lastErr())
	}
	if out == nil {
		return nil, io.EOF
	}
	return ctakeJSON(out), nil
}

// Close drops the stream; an unfinished stream ends with ERROR status "cancelled".
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var msg *C.char
	return check(C.go_llm_stream_free(C.uint64_t(s.id), &msg), msg)
}

// Call is a tool or LLM call started with StartTool / StartLLM (manual lifecycle).
type Call struct {
	id uint64
}

func startCall(ctx context.Context, kind callKind, name string, input any, opts []Option) (*Call, error) {
	st, err := stackFor(ctx)
	if err != nil {
		return nil, err
	}
	in, err := marshalArg("input", input)
	if err != nil {
		return nil, err
	}
	o := collect(opts)
	var oj []byte
	if kind == callTool {
		oj, err = o.json("tool_call_id", "metadata", "attributes")
	} else {
		oj, err = o.json("model_name", "metadata", "attributes")
	}
	if err != nil {
		return nil, err
	}
	var id C.uint64_t
	var msg *C.char
	var rc C.int32_t
	if kind == callTool {
		rc = C.go_tool_start(C.uint64_t(st.id), cbytes(name), cjson(in), optJSON(oj), C.uint64_t(o.parentID()), &id, &msg)
	} else {
		rc = C.go_llm_start(C.uint64_t(st.id), cbytes(name), cjson(in), optJSON(oj), C.uint64_t(o.parentID()), &id, &msg)
	}
	runtime.KeepAlive(st)
	runtime.KeepAlive(o.parent)
	if err := check(rc, msg); err != nil {
		return nil, err
	}
	c := &Call{id: uint64(id)}
	runtime.SetFinalizer(c, func(c *Call) { C.baton_call_free(C.uint64_t(c.id)) })
	return c, nil
}

// StartTool emits a tool start without running the tool, for frameworks that run it
// themselves; end it with Call.End. Options: ToolCallID, Metadata, Attributes, Parent.
func StartTool(ctx context.Context, name string, args any, opts ...Option) (*Call, error) {
	return startCall(ctx, callTool, name, args, opts)
}

// StartLLM emits an LLM start without calling the model. Options: ModelName, Metadata,
// Attributes, Parent.
func StartLLM(ctx context.Context, name string, request any, opts ...Option) (*Call, error) {
	return startCall(ctx, callLLM, name, request, opts)
}

// End ends a manual call. Options: Output (the result / response), Metadata, WithError.
func (c *Call) End(opts ...Option) error {
	oj, err := collect(opts).json("output", "metadata", "error")
	if err != nil {
		return err
	}
	var msg *C.char
	err = check(C.go_call_end(C.uint64_t(c.id), optJSON(oj), &msg), msg)
	runtime.KeepAlive(c)
	return err
}

// UUID is the call's uuid.
func (c *Call) UUID() string {
	var out, msg *C.char
	if check(C.go_call_uuid(C.uint64_t(c.id), &out, &msg), msg) != nil {
		return ""
	}
	runtime.KeepAlive(c)
	return ctake(out)
}

// ToolConditionalExecution runs only the tool guardrails (their scopes and any rejection
// mark): nil when allowed, an error matching ErrGuardrailRejected when rejected.
func ToolConditionalExecution(ctx context.Context, name string, args any) error {
	return standaloneGuard(ctx, callTool, name, args)
}

// LLMConditionalExecution runs only the LLM guardrails.
func LLMConditionalExecution(ctx context.Context, name string, request any) error {
	return standaloneGuard(ctx, callLLM, name, request)
}

func standaloneGuard(ctx context.Context, kind callKind, name string, input any) error {
	st, err := stackFor(ctx)
	if err != nil {
		return err
	}
	in, err := marshalArg("input", input)
	if err != nil {
		return err
	}
	var msg *C.char
	var rc C.int32_t
	if kind == callTool {
		rc = C.go_tool_conditional_execution(C.uint64_t(st.id), cbytes(name), cjson(in), &msg)
	} else {
		rc = C.go_llm_conditional_execution(C.uint64_t(st.id), cbytes(name), cjson(in), &msg)
	}
	runtime.KeepAlive(st)
	return check(rc, msg)
}

// ToolRequestIntercepts runs only the tool request intercepts and returns the rewritten args.
func ToolRequestIntercepts(ctx context.Context, name string, args any) (json.RawMessage, error) {
	return standaloneIntercepts(ctx, callTool, name, args)
}

// LLMRequestIntercepts runs only the LLM request intercepts and returns the rewritten request.
func LLMRequestIntercepts(ctx context.Context, name string, request any) (json.RawMessage, error) {
	return standaloneIntercepts(ctx, callLLM, name, request)
}

func standaloneIntercepts(ctx context.Context, kind callKind, name string, input any) (json.RawMessage, error) {
	st, err := stackFor(ctx)
	if err != nil {
		return nil, err
	}
	in, err := marshalArg("input", input)
	if err != nil {
		return nil, err
	}
	var out, msg *C.char
	var rc C.int32_t
	if kind == callTool {
		rc = C.go_tool_request_intercepts(C.uint64_t(st.id), cbytes(name), cjson(in), &out, &msg)
	} else {
		rc = C.go_llm_request_intercepts(C.uint64_t(st.id), cbytes(name), cjson(in), &out, &msg)
	}
	runtime.KeepAlive(st)
	if err := check(rc, msg); err != nil {
		return nil, err
	}
	return ctakeJSON(out), nil
}
