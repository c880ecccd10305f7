package baton

// The C side of the binding: link flags (the Rust library in target/release) and the C
// wrappers of glue.h.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lbaton_ffi -Wl,-rpath,${SRCDIR}/../../target/release
#include "glue.h"
*/
import "C"

import (
	"encoding/json"
	"unsafe"
)

// cbytes returns a NUL-terminated copy of s in Go memory, passed to C for one call.
func cbytes(s string) *C.char {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// cjson is cbytes for JSON bytes.
func cjson(b []byte) *C.char {
	buf := make([]byte, len(b)+1)
	copy(buf, b)
	return (*C.char)(unsafe.Pointer(&buf[0]))
}

// strData points at s's bytes for the duration of one C call, without a copy (nil when s is
// empty). cgo lets C borrow Go memory that holds no Go pointers while the call lasts; Baton
// copies what it keeps. The functions taking it have an explicit length (s has no NUL).
func strData(s string) *C.char {
	if len(s) == 0 {
		return nil
	}
	return (*C.char)(*(*unsafe.Pointer)(unsafe.Pointer(&s)))
}

// bytesData is strData for a byte slice.
func bytesData(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// ctake copies a string Baton returned and frees it.
func ctake(p *C.char) string {
	if p == nil {
		return ""
	}
	s := C.GoString(p)
	C.baton_string_free(p)
	return s
}

// ctakeJSON copies a JSON string Baton returned and frees it.
func ctakeJSON(p *C.char) json.RawMessage {
	if p == nil {
		return nil
	}
	b := C.GoBytes(unsafe.Pointer(p), C.int(C.strlen(p)))
	C.baton_string_free(p)
	return json.RawMessage(b)
}

// check turns a status and the copied message into an error.
func check(rc C.int32_t, msg *C.char) error {
	if rc == 0 {
		return nil
	}
	m := ""
	if msg != nil {
		m = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	return &Error{Kind: kindOf(int(rc)), Message: m}
}

func cbool(b bool) C.bool { return C.bool(b) }
