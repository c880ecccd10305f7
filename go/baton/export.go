package baton

// The Go functions Baton calls back: managed-call callbacks, middleware, subscribers and
// chunk sources. Each receives its Go state through a cgo.Handle passed as user_data (never a
// Go pointer), recovers panics, and reports errors through baton_out_set_error.

/*
#include <stdlib.h>
#include <string.h>
#include "baton.h"
*/
import "C"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/cgo"
	"unsafe"
)

func goBytes(p *C.char) json.RawMessage {
	if p == nil {
		return nil
	}
	return json.RawMessage(C.GoBytes(unsafe.Pointer(p), C.int(C.strlen(p))))
}

// setError describes err in out and returns its status.
func setError(out *C.BatonOut, err error) C.int32_t {
	kind, msg := KindCallbackFailed, err.Error()
	var be *Error
	if errors.As(err, &be) {
		kind, msg = be.Kind, be.Message
	}
	status := C.int32_t(statusOf(kind))
	C.baton_out_set_error(out, status, cbytes(msg), cbytes(fmt.Sprintf("%T", err)))
	return status
}

// setJSON stores a JSON result in out.
func setJSON(out *C.BatonOut, b []byte) C.int32_t {
	if len(b) == 0 {
		b = []byte("null")
	}
	rc := C.baton_out_set_json_n(out, (*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b)))
	if rc != 0 {
		C.baton_out_set_error(out, rc, C.baton_last_error_message(), nil)
	}
	return rc
}

// recovered turns a panic in a callback into an internal error.
func recovered(out *C.BatonOut, rc *C.int32_t) {
	if p := recover(); p != nil {
		*rc = setError(out, &Error{Kind: KindInternal, Message: fmt.Sprint("panic: ", p)})
	}
}

//export batonGoCallback
func batonGoCallback(ud unsafe.Pointer, input *C.char, out *C.BatonOut) (rc C.int32_t) {
	defer recovered(out, &rc)
	cs := cgo.Handle(uintptr(ud)).Value().(*callState)
	in := goBytes(input)
	if cs.stream != nil {
		src, err := cs.stream(cs.ctx, in)
		if err == nil && src == nil {
			err = &Error{Kind: KindInvalidArgument, Message: "stream callback returned a nil ChunkSource"}
		}
		if err != nil {
			cs.setErr(err)
			return setError(out, err)
		}
		ss := &sourceState{next: src}
		cs.mu.Lock()
		cs.source = ss
		cs.mu.Unlock()
		return setChunkSource(out, ss)
	}
	v, err := cs.fn(cs.ctx, in)
	if err != nil {
		cs.setErr(err)
		return setError(out, err)
	}
	b, err := marshal(v)
	if err != nil {
		return setError(out, &Error{Kind: KindCallbackFailed, Message: "result: " + err.Error()})
	}
	return setJSON(out, b)
}

//export batonGoChunkNext
func batonGoChunkNext(state unsafe.Pointer, out *C.BatonOut) (rc C.int32_t) {
	defer recovered(out, &rc)
	ss := cgo.Handle(uintptr(state)).Value().(*sourceState)
	chunk, err := ss.next()
	if err == io.EOF {
		return 0
	}
	if err != nil {
		ss.mu.Lock()
		ss.err = err
		ss.mu.Unlock()
		return setError(out, err)
	}
	return setJSON(out, chunk)
}

//export batonGoFree
func batonGoFree(ud unsafe.Pointer) {
	cgo.Handle(uintptr(ud)).Delete()
}

//export batonGoHook
func batonGoHook(ud unsafe.Pointer, info, input *C.char, out *C.BatonOut) (rc C.int32_t) {
	defer recovered(out, &rc)
	reg := cgo.Handle(uintptr(ud)).Value().(*registered)
	in := goBytes(input)
	switch fn := reg.fn.(type) {
	case GuardrailFunc:
		ci := callInfoOf(goBytes(info))
		d, err := fn(ci, in)
		if err != nil {
			return setError(out, err)
		}
		if d.Rejected {
			C.baton_out_set_reject(out, cbytes(d.Reason))
		}
		return 0
	case RequestInterceptFunc:
		ci := callInfoOf(goBytes(info))
		v, err := fn(ci, in)
		if err != nil {
			return setError(out, err)
		}
		if v == nil {
			return 0
		}
		return setJSON(out, v)
	case SanitizerFunc:
		ci := callInfoOf(goBytes(info))
		v, err := fn(ci, in)
		if err != nil {
			return setError(out, err)
		}
		if v == nil {
			return 0
		}
		return setJSON(out, v)
	case EventSanitizerFunc:
		ei := eventInfoOf(goBytes(info))
		var f EventFields
		d := json.NewDecoder(bytes.NewReader(in))
		d.UseNumber()
		_ = d.Decode(&f)
		r, err := fn(ei, f)
		if err != nil {
			return setError(out, err)
		}
		if r == nil {
			return 0
		}
		if r.Metadata == nil {
			r.Metadata = map[string]any{}
		}
		if r.Data == nil {
			r.Data = json.RawMessage("null")
		}
		b, err := json.Marshal(r)
		if err != nil {
			return setError(out, err)
		}
		return setJSON(out, b)
	case MetadataInjectorFunc:
		ei := eventInfoOf(goBytes(info))
		m, err := fn(ei)
		if err != nil {
			return setError(out, err)
		}
		if m == nil {
			return 0
		}
		b, err := json.Marshal(m)
		if err != nil {
			return setError(out, err)
		}
		return setJSON(out, b)
	default:
		return setError(out, &Error{Kind: KindInvalidArgument, Message: fmt.Sprintf("%s: unexpected callback type %T", reg.family, reg.fn)})
	}
}

//export batonGoExec
func batonGoExec(ud unsafe.Pointer, info, input *C.char, next *C.BatonNext, out *C.BatonOut) (rc C.int32_t) {
	defer recovered(out, &rc)
	reg := cgo.Handle(uintptr(ud)).Value().(*registered)
	fn := reg.fn.(ExecutionInterceptFunc)
	done := false
	cc := &CallContext{next: next, done: &done}
	cc.Info = callInfoOf(goBytes(info))
	nf := func(in json.RawMessage) (json.RawMessage, error) {
		if done {
			return nil, &Error{Kind: KindInvalidState, Message: "next called after the intercept returned"}
		}
		if in == nil {
			in = json.RawMessage("null")
		}
		return nextCall(next, in)
	}
	v, err := fn(cc, goBytes(input), nf)
	done = true
	if err != nil {
		return setError(out, err)
	}
	return setJSON(out, v)
}

//export batonGoStreamIntercept
func batonGoStreamIntercept(ud unsafe.Pointer, info *C.char, inner *C.BatonChunkStream, out *C.BatonOut) (rc C.int32_t) {
	defer recovered(out, &rc)
	reg := cgo.Handle(uintptr(ud)).Value().(*registered)
	fn := reg.fn.(StreamInterceptFunc)
	ci := callInfoOf(goBytes(info))
	innerSrc := ChunkSource(func() (json.RawMessage, error) {
		c, err := chunkNext(inner)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, io.EOF
		}
		return c, nil
	})
	src, err := fn(ci, innerSrc)
	if err != nil {
		return setError(out, err)
	}
	if src == nil {
		return 0
	}
	return setChunkSource(out, &sourceState{next: src})
}

// eventChunk is the size of the Go buffers a batch's events are copied into. A dispatcher
// batch can hold hundreds of kilobytes; one buffer per batch would be a large object, whose
// fresh pages fault in on every batch (more than the copy itself costs), and a subscriber
// keeping one event would keep the whole batch alive. Chunks of a small-object size class
// are reused by the allocator, and bound what one kept event retains.
const eventChunk = 16 << 10

//export batonGoSubscriberBatch
func batonGoSubscriberBatch(ud unsafe.Pointer, events *C.char, ends *C.size_t, count C.size_t) (failed C.size_t) {
	// One cgo crossing per dispatcher batch: a callback from Baton's (non-Go) dispatcher
	// thread costs far more than the subscriber's own work, so events come in batches.
	n := int(count)
	if n == 0 {
		return 0
	}
	bounds := unsafe.Slice((*C.size_t)(ends), n)
	total := int(bounds[n-1])
	text := unsafe.Slice((*byte)(unsafe.Pointer(events)), total) // C memory, read during this call only
	fn := cgo.Handle(uintptr(ud)).Value().(*registered).fn.(SubscriberFunc)
	start := 0
	for i := 0; i < n; {
		// Events i..j-1: as many as fit in one buffer (at least one), copied at once.
		j := i + 1
		for j < n && int(bounds[j])-start <= eventChunk {
			j++
		}
		stop := int(bounds[j-1])
		buf := append([]byte(nil), text[start:stop]...) // no zeroing before the copy
		at := 0
		for ; i < j; i++ {
			end := int(bounds[i]) - start
			// Each event's bytes are its own: capacity capped, so appending to one cannot
			// overwrite the next.
			if !deliverOne(fn, json.RawMessage(buf[at:end:end])) {
				failed++
			}
			at = end
		}
		start = stop
	}
	return failed
}

// deliverOne calls a Go subscriber with one event; an error or a panic is a failure.
func deliverOne(fn SubscriberFunc, event json.RawMessage) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			ok = false
		}
	}()
	return fn(event) == nil
}
