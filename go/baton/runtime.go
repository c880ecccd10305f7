package baton

/*
#include "glue.h"
*/
import "C"

import (
	"encoding/json"
	"time"
)

// Runtime is a Baton runtime: a middleware registry and the dispatcher that delivers events.
// Default() is the process-wide one; NewRuntime makes an independent one (tests, embedding).
type Runtime struct {
	id C.uint64_t
}

var defaultRuntime = &Runtime{id: 0}

// Default returns the process-wide runtime.
func Default() *Runtime { return defaultRuntime }

// RuntimeOption configures NewRuntime.
type RuntimeOption func(map[string]any)

// QueueCapacity bounds the delivery queue (events; default 65,536).
func QueueCapacity(n int) RuntimeOption { return func(m map[string]any) { m["queue_capacity"] = n } }

// DropOnOverflow drops (and counts) events when the queue is full instead of blocking.
func DropOnOverflow() RuntimeOption { return func(m map[string]any) { m["overflow"] = "drop" } }

// NewRuntime creates an independent runtime. Call Shutdown, then Close, when done.
func NewRuntime(opts ...RuntimeOption) (*Runtime, error) {
	cfg := map[string]any{}
	for _, o := range opts {
		o(cfg)
	}
	b, _ := json.Marshal(cfg)
	var id C.uint64_t
	var msg *C.char
	if err := check(C.go_runtime_new(cjson(b), &id, &msg), msg); err != nil {
		return nil, err
	}
	return &Runtime{id: id}, nil
}

// Close releases a runtime made by NewRuntime (stacks made from it keep it alive).
func (r *Runtime) Close() error {
	if r.id == 0 {
		return nil
	}
	var msg *C.char
	return check(C.go_runtime_free(r.id, &msg), msg)
}

func millis(d time.Duration) C.uint64_t {
	if d < 0 {
		return 0
	}
	return C.uint64_t(d / time.Millisecond)
}

// Flush waits until every event emitted before it has been delivered; it reports whether that
// happened within timeout.
func (r *Runtime) Flush(timeout time.Duration) (bool, error) {
	var done C.bool
	var msg *C.char
	err := check(C.go_runtime_flush(r.id, millis(timeout), &done, &msg), msg)
	return bool(done), err
}

// Shutdown flushes and stops the runtime; afterwards operations fail with ErrAlreadyShutdown.
func (r *Runtime) Shutdown(timeout time.Duration) (bool, error) {
	var done C.bool
	var msg *C.char
	err := check(C.go_runtime_shutdown(r.id, millis(timeout), &done, &msg), msg)
	return bool(done), err
}

// Diagnostics are a runtime's delivery counters.
type Diagnostics struct {
	DeliveredEvents    uint64 `json:"delivered_events"`
	DroppedEvents      uint64 `json:"dropped_events"`
	SubscriberFailures uint64 `json:"subscriber_failures"`
	MiddlewareFailures uint64 `json:"middleware_failures"`
	Queued             uint64 `json:"queued"`
}

// Diagnostics returns the delivery counters.
func (r *Runtime) Diagnostics() (Diagnostics, error) {
	var out, msg *C.char
	var d Diagnostics
	if err := check(C.go_runtime_diagnostics(r.id, &out, &msg), msg); err != nil {
		return d, err
	}
	err := json.Unmarshal(ctakeJSON(out), &d)
	return d, err
}

// Flush flushes the default runtime.
func Flush(timeout time.Duration) (bool, error) { return defaultRuntime.Flush(timeout) }

// Shutdown shuts the default runtime down.
func Shutdown(timeout time.Duration) (bool, error) { return defaultRuntime.Shutdown(timeout) }

// ABIVersion is the version of the C ABI of the linked library.
func ABIVersion() uint32 { return uint32(C.baton_abi_version()) }
