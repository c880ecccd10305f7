package baton

/*
#include "glue.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
)

// A stack holds the open scopes of one flow of work. A context carries one once a scope was
// started in it (StartScope) or it was made by NewStack, Fork or FromPropagation; contexts
// derived from it share it. A stack is used by one goroutine at a time: give each goroutine
// that continues the work concurrently its own context with Fork.
type stack struct {
	id uint64
	rt *Runtime
}

func newStackRef(id C.uint64_t, rt *Runtime) *stack {
	s := &stack{id: uint64(id), rt: rt}
	runtime.SetFinalizer(s, func(s *stack) { C.baton_stack_free(C.uint64_t(s.id)) })
	return s
}

type stackKey struct{}
type runtimeKey struct{}

func stackOf(ctx context.Context) *stack {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(stackKey{}).(*stack)
	return s
}

// RuntimeOf returns the runtime a context works on (Default unless WithRuntime set one).
func RuntimeOf(ctx context.Context) *Runtime {
	if s := stackOf(ctx); s != nil {
		return s.rt
	}
	if ctx != nil {
		if r, ok := ctx.Value(runtimeKey{}).(*Runtime); ok {
			return r
		}
	}
	return defaultRuntime
}

// WithRuntime returns a context whose stacks (and so scopes and calls) are made on rt. It
// carries no stack yet: each StartScope or call from it starts a fresh one, so goroutines may
// share it.
func WithRuntime(ctx context.Context, rt *Runtime) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithValue(context.WithValue(ctx, runtimeKey{}, rt), stackKey{}, (*stack)(nil))
}

func freshStack(rt *Runtime) (*stack, error) {
	var id C.uint64_t
	var msg *C.char
	if err := check(C.go_stack_new(rt.id, &id, &msg), msg); err != nil {
		return nil, err
	}
	return newStackRef(id, rt), nil
}

// stackFor returns the context's stack, or a fresh one (a context without a stack is at the
// top level).
func stackFor(ctx context.Context) (*stack, error) {
	if s := stackOf(ctx); s != nil {
		return s, nil
	}
	return freshStack(RuntimeOf(ctx))
}

// NewStack returns a context with a fresh, empty stack (its scopes have no parent).
func NewStack(ctx context.Context) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := freshStack(RuntimeOf(ctx))
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, stackKey{}, s)
}

// Fork returns a context with a new stack whose first scope is parented under ctx's current
// scope: give one to every goroutine that continues ctx's work concurrently.
func Fork(ctx context.Context) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	cur := stackOf(ctx)
	if cur == nil {
		return NewStack(ctx)
	}
	var id C.uint64_t
	var msg *C.char
	if err := check(C.go_stack_fork(C.uint64_t(cur.id), &id, &msg), msg); err != nil {
		return NewStack(ctx)
	}
	runtime.KeepAlive(cur)
	return context.WithValue(ctx, stackKey{}, newStackRef(id, cur.rt))
}

// Propagation is the JSON context that hands a position in the scope tree to another process.
type Propagation struct {
	Version    int     `json:"version"`
	RootUUID   string  `json:"root_uuid,omitempty"`
	ParentUUID *string `json:"parent_uuid"`
}

// PropagationContext returns the propagation context of ctx's current scope.
func PropagationContext(ctx context.Context) (Propagation, error) {
	var p Propagation
	s, err := stackFor(ctx)
	if err != nil {
		return p, err
	}
	var out, msg *C.char
	err = check(C.go_stack_propagation_context(C.uint64_t(s.id), &out, &msg), msg)
	runtime.KeepAlive(s)
	if err != nil {
		return p, err
	}
	err = json.Unmarshal(ctakeJSON(out), &p)
	return p, err
}

// FromPropagation returns a context with a new stack whose top-level scopes are parented
// under the propagation context p (from another process).
func FromPropagation(ctx context.Context, p Propagation) (context.Context, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	b, err := json.Marshal(p)
	if err != nil {
		return ctx, err
	}
	return FromPropagationJSON(ctx, b)
}

// FromPropagationJSON is FromPropagation with the context as JSON.
func FromPropagationJSON(ctx context.Context, p json.RawMessage) (context.Context, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rt := RuntimeOf(ctx)
	var id C.uint64_t
	var msg *C.char
	if err := check(C.go_stack_from_propagation(rt.id, cjson(p), &id, &msg), msg); err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, stackKey{}, newStackRef(id, rt)), nil
}

// Traceparent returns the W3C traceparent of ctx's current scope (ErrInvalidState at the top level).
func Traceparent(ctx context.Context) (string, error) {
	s, err := stackFor(ctx)
	if err != nil {
		return "", err
	}
	var out, msg *C.char
	err = check(C.go_stack_traceparent(C.uint64_t(s.id), &out, &msg), msg)
	runtime.KeepAlive(s)
	if err != nil {
		return "", err
	}
	return ctake(out), nil
}

// Scope is an open (or ended) scope.
type Scope struct {
	id    uint64
	stack *stack
	err   error
	uuid  string
}

func newScope(id C.uint64_t, st *stack) *Scope {
	s := &Scope{id: uint64(id), stack: st}
	runtime.SetFinalizer(s, func(s *Scope) { C.baton_scope_free(C.uint64_t(s.id)) })
	return s
}

// StartScope opens a scope on ctx's stack (a fresh stack if ctx has none) and returns a
// context carrying that stack, in which later work is parented under the scope:
//
//	ctx, s := baton.StartScope(ctx, "turn", baton.Category("agent"))
//	defer s.End()
//
// If the scope could not start, s.Err() says why and s.End() returns that error.
// Options: Category, Input, Metadata, Attributes, CategoryProfile, DataSchema, Parent.
func StartScope(ctx context.Context, name string, opts ...Option) (context.Context, *Scope) {
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := stackFor(ctx)
	if err != nil {
		return ctx, &Scope{err: err}
	}
	if stackOf(ctx) != st {
		ctx = context.WithValue(ctx, stackKey{}, st)
	}
	o := collect(opts)
	oj, err := o.json("category", "input", "metadata", "attributes", "category_profile", "data_schema")
	if err != nil {
		return ctx, &Scope{err: err, stack: st}
	}
	var id C.uint64_t
	var msg *C.char
	rc := C.go_scope_push(C.uint64_t(st.id), cbytes(name), optJSON(oj), C.uint64_t(o.parentID()), &id, &msg)
	runtime.KeepAlive(o.parent)
	if err := check(rc, msg); err != nil {
		return ctx, &Scope{err: err, stack: st}
	}
	return ctx, newScope(id, st)
}

// Err reports why the scope could not start (nil when it did).
func (s *Scope) Err() error { return s.err }

// End ends the scope, unwinding scopes still open above it on its stack (they end with
// error.type "unwound"). Options: Output, Metadata, WithError. Ending twice is ErrNotFound.
func (s *Scope) End(opts ...Option) error {
	if s.err != nil {
		return s.err
	}
	oj, err := collect(opts).json("output", "metadata", "error")
	if err != nil {
		return err
	}
	var msg *C.char
	err = check(C.go_scope_pop(C.uint64_t(s.id), optJSON(oj), &msg), msg)
	runtime.KeepAlive(s)
	return err
}

// UUID is the scope's uuid ("" if it never started).
func (s *Scope) UUID() string {
	if s.err != nil {
		return ""
	}
	if s.uuid == "" {
		var out, msg *C.char
		if check(C.go_scope_uuid(C.uint64_t(s.id), &out, &msg), msg) == nil {
			s.uuid = ctake(out)
		}
		runtime.KeepAlive(s)
	}
	return s.uuid
}

// Mark emits a mark under ctx's current scope (or Parent). Options: Data, Metadata, Category,
// CategoryProfile, DataSchema, Parent.
func Mark(ctx context.Context, name string, opts ...Option) error {
	st, err := stackFor(ctx)
	if err != nil {
		return err
	}
	o := collect(opts)
	oj, err := o.json("data", "metadata", "category", "category_profile", "data_schema")
	if err != nil {
		return err
	}
	var msg *C.char
	err = check(C.go_mark_emit(C.uint64_t(st.id), cbytes(name), optJSON(oj), C.uint64_t(o.parentID()), &msg), msg)
	runtime.KeepAlive(st)
	runtime.KeepAlive(o.parent)
	return err
}

// Measurement is one value of a metric.
type Measurement struct {
	Value      float64        `json:"value"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Metric emits a metric mark. measurements is a number, a []Measurement, or any JSON array of
// {value, attributes?}. Options: Unit.
func Metric(ctx context.Context, name string, measurements any, opts ...Option) error {
	st, err := stackFor(ctx)
	if err != nil {
		return err
	}
	b, err := marshalArg("measurements", measurements)
	if err != nil {
		return err
	}
	o := collect(opts)
	var unit *C.char
	if o.unit != nil {
		unit = cbytes(*o.unit)
	}
	var msg *C.char
	err = check(C.go_metric_emit(C.uint64_t(st.id), cbytes(name), cjson(b), unit, &msg), msg)
	runtime.KeepAlive(st)
	return err
}

func optJSON(b []byte) *C.char {
	if b == nil {
		return nil
	}
	return cjson(b)
}
