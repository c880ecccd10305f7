package baton

import (
	"encoding/json"
	"errors"
)

// Option configures a scope, mark, managed call or end. Each function reads the options that
// apply to it and ignores the others (the doc of each option says where it applies).
type Option func(*options)

type options struct {
	fields  map[string]any
	parent  *Scope
	unit    *string
	err     error
	encErr  error
	isError bool
}

func (o *options) set(k string, v any) {
	if o.fields == nil {
		o.fields = make(map[string]any, 4)
	}
	o.fields[k] = v
}

func (o *options) setJSON(k string, v any) {
	raw, err := marshal(v)
	if err != nil {
		o.encErr = err
		return
	}
	o.set(k, raw)
}

func collect(opts []Option) *options {
	o := &options{}
	for _, f := range opts {
		if f != nil {
			f(o)
		}
	}
	return o
}

// json returns the options object restricted to keys, or nil when none is set.
func (o *options) json(keys ...string) ([]byte, error) {
	if o.encErr != nil {
		return nil, &Error{Kind: KindInvalidArgument, Message: "option: " + o.encErr.Error()}
	}
	if len(o.fields) == 0 {
		return nil, nil
	}
	m := make(map[string]any, len(keys))
	for _, k := range keys {
		if v, ok := o.fields[k]; ok {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

func (o *options) parentID() uint64 {
	if o.parent == nil {
		return 0
	}
	return o.parent.id
}

// Category sets a scope's category (default "function") or a mark's category.
func Category(c string) Option { return func(o *options) { o.set("category", c) } }

// Input sets a scope's input (the start event's data).
func Input(v any) Option { return func(o *options) { o.setJSON("input", v) } }

// Output sets the output of a scope or manual call when it ends (the end event's data).
func Output(v any) Option { return func(o *options) { o.setJSON("output", v) } }

// Data sets a mark's data.
func Data(v any) Option { return func(o *options) { o.setJSON("data", v) } }

// Metadata sets metadata: of a scope start, a mark, a managed call, or merged in at an end.
func Metadata(m map[string]any) Option { return func(o *options) { o.setJSON("metadata", m) } }

// Attributes sets attribute flags of a scope or managed call.
func Attributes(flags ...string) Option { return func(o *options) { o.set("attributes", flags) } }

// CategoryProfile sets the category_profile of a scope or mark.
func CategoryProfile(v any) Option { return func(o *options) { o.setJSON("category_profile", v) } }

// DataSchema sets the data_schema of a scope or mark.
func DataSchema(name, version string) Option {
	return func(o *options) { o.set("data_schema", map[string]string{"name": name, "version": version}) }
}

// Parent sets an explicit parent scope for a scope, mark or call (default: the current scope).
func Parent(s *Scope) Option { return func(o *options) { o.parent = s } }

// ToolCallID sets a tool call's tool_call_id.
func ToolCallID(id string) Option { return func(o *options) { o.set("tool_call_id", id) } }

// ModelName sets an LLM call's model_name.
func ModelName(m string) Option { return func(o *options) { o.set("model_name", m) } }

// ChunkMarks turns the llm.chunk marks of a stream on (default) or off.
func ChunkMarks(on bool) Option { return func(o *options) { o.set("chunk_marks", on) } }

// Codec names the provider codec of an LLM request's content (openai_chat, openai_responses,
// anthropic_messages, gemini_generate_content or auto): events then carry the normalized
// annotated_request and, for responses, annotated_response.
func Codec(name string) Option { return func(o *options) { o.set("codec", name) } }

// ResponseCodec names the codec of an LLM response when it differs from Codec.
func ResponseCodec(name string) Option { return func(o *options) { o.set("response_codec", name) } }

// Unit sets a metric's unit.
func Unit(u string) Option { return func(o *options) { o.unit = &u } }

// WithError ends a scope or manual call with ERROR status, carrying err's kind and message.
func WithError(err error) Option {
	return func(o *options) {
		if err == nil {
			return
		}
		kind, msg := KindCallbackFailed, err.Error()
		var be *Error
		if errors.As(err, &be) {
			kind, msg = be.Kind, be.Message
		}
		o.set("error", map[string]string{"kind": string(kind), "message": msg})
	}
}

// marshal encodes a Go value as JSON; json.RawMessage passes through unchanged.
func marshal(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case json.RawMessage:
		if x == nil {
			return json.RawMessage("null"), nil
		}
		return x, nil
	default:
		return json.Marshal(v)
	}
}

func marshalArg(what string, v any) ([]byte, error) {
	b, err := marshal(v)
	if err != nil {
		return nil, &Error{Kind: KindInvalidArgument, Message: what + ": " + err.Error()}
	}
	return b, nil
}
