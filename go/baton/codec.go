package baton

/*
#include "glue.h"
*/
import "C"

import "encoding/json"

// Provider codecs (docs/codecs.md). codec is openai_chat, openai_responses,
// anthropic_messages, gemini_generate_content or auto (detected from the shape; a shape no
// codec recognizes gives JSON null).

func codecCall(f func(out, msg **C.char) C.int32_t) (json.RawMessage, error) {
	var out, msg *C.char
	if err := check(f(&out, &msg), msg); err != nil {
		return nil, err
	}
	return ctakeJSON(out), nil
}

// DecodeRequest normalizes a provider request.
func DecodeRequest(codec string, request any) (json.RawMessage, error) {
	b, err := marshalArg("request", request)
	if err != nil {
		return nil, err
	}
	return codecCall(func(out, msg **C.char) C.int32_t {
		return C.go_codec_decode_request(cbytes(codec), cjson(b), out, msg)
	})
}

// EncodeRequest writes an edited normalized request back into the provider request original.
func EncodeRequest(codec string, normalized, original any) (json.RawMessage, error) {
	n, err := marshalArg("normalized", normalized)
	if err != nil {
		return nil, err
	}
	o, err := marshalArg("original", original)
	if err != nil {
		return nil, err
	}
	return codecCall(func(out, msg **C.char) C.int32_t {
		return C.go_codec_encode_request(cbytes(codec), cjson(n), cjson(o), out, msg)
	})
}

// DecodeResponse normalizes a buffered provider response.
func DecodeResponse(codec string, response any) (json.RawMessage, error) {
	b, err := marshalArg("response", response)
	if err != nil {
		return nil, err
	}
	return codecCall(func(out, msg **C.char) C.int32_t {
		return C.go_codec_decode_response(cbytes(codec), cjson(b), out, msg)
	})
}

// AggregateStream normalizes the response of a whole stream of provider chunks (an array).
func AggregateStream(codec string, chunks any) (json.RawMessage, error) {
	b, err := marshalArg("chunks", chunks)
	if err != nil {
		return nil, err
	}
	return codecCall(func(out, msg **C.char) C.int32_t {
		return C.go_codec_aggregate_stream(cbytes(codec), cjson(b), out, msg)
	})
}
