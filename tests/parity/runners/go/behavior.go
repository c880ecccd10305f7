package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/baton-runtime/baton/go/baton"
)

// Scenario behaviours as real Go middleware, subscribers and callbacks.

// recorders holds the events each recording subscriber received.
type recorders struct {
	mu     sync.Mutex
	events map[string][]json.RawMessage
}

func (r *recorders) ensure(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.events[name]; !ok {
		r.events[name] = []json.RawMessage{}
	}
}

func (r *recorders) record(name string, e json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[name] = append(r.events[name], e)
}

func decode(raw []byte) any {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil
	}
	return v
}

func encode(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage("null")
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n"))
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type behavior map[string]any

func (b behavior) str(k string) (string, bool) {
	s, ok := b[k].(string)
	return s, ok
}

func (b behavior) boolean(k string) bool {
	v, _ := b[k].(bool)
	return v
}

func (b behavior) count(k string) (int, bool) {
	n, ok := b[k].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return int(i), err == nil
}

func (b behavior) failure() error {
	if m, ok := b.str("fail"); ok {
		return errors.New(m)
	}
	return nil
}

func guardrail(b behavior) baton.GuardrailFunc {
	return func(call baton.CallInfo, _ json.RawMessage) (baton.Decision, error) {
		if err := b.failure(); err != nil {
			return baton.Allow(), err
		}
		if r, ok := b.str("reject"); ok {
			return baton.Reject(r), nil
		}
		if n, ok := b.str("reject_if_name"); ok {
			if call.Name == n {
				reason, ok := b.str("reason")
				if !ok {
					reason = "rejected"
				}
				return baton.Reject(reason), nil
			}
		}
		return baton.Allow(), nil
	}
}

func requestIntercept(b behavior) baton.RequestInterceptFunc {
	return func(_ baton.CallInfo, input json.RawMessage) (json.RawMessage, error) {
		if err := b.failure(); err != nil {
			return nil, err
		}
		v := decode(input)
		if edits, ok := b["set"]; ok {
			var err error
			if v, err = setAll(v, edits); err != nil {
				return nil, err
			}
		}
		return encode(v), nil
	}
}

func executionIntercept(b behavior) baton.ExecutionInterceptFunc {
	return func(call *baton.CallContext, input json.RawMessage, next baton.Next) (json.RawMessage, error) {
		if marks, ok := b["marks"].([]any); ok {
			for _, m := range marks {
				mm, _ := m.(map[string]any)
				name, ok := mm["name"].(string)
				if !ok {
					name = "mark"
				}
				if err := call.QueueMark(name, encode(mm["data"]), nil); err != nil {
					return nil, err
				}
			}
		}
		if err := b.failure(); err != nil {
			return nil, err
		}
		if v, ok := b["replace"]; ok {
			return encode(v), nil
		}
		if n, ok := b.count("retry"); ok {
			var last json.RawMessage = json.RawMessage("null")
			var lastErr error
			for i := 0; i < n; i++ {
				last, lastErr = next(input)
			}
			return last, lastErr
		}
		if n, ok := b.count("retry_on_error"); ok {
			r, err := next(input)
			for tries := 0; err != nil && tries < n; tries++ {
				r, err = next(input)
			}
			return r, err
		}
		if edits, ok := b["set_input"]; ok {
			v, err := setAll(decode(input), edits)
			if err != nil {
				return nil, err
			}
			input = encode(v)
		}
		out, err := next(input)
		if err != nil {
			return nil, err
		}
		if edits, ok := b["set_result"]; ok {
			v, err := setAll(decode(out), edits)
			if err != nil {
				return nil, err
			}
			out = encode(v)
		}
		return out, nil
	}
}

func streamIntercept(b behavior) baton.StreamInterceptFunc {
	return func(_ baton.CallInfo, inner baton.ChunkSource) (baton.ChunkSource, error) {
		if err := b.failure(); err != nil {
			return nil, err
		}
		s := inner
		if edits, ok := b["set_chunk"]; ok {
			prev := s
			s = func() (json.RawMessage, error) {
				c, err := prev()
				if err != nil {
					return nil, err
				}
				v, err := setAll(decode(c), edits)
				if err != nil {
					return nil, err
				}
				return encode(v), nil
			}
		}
		if tail, ok := b["append"]; ok {
			prev := s
			done, sent := false, false
			s = func() (json.RawMessage, error) {
				if !done {
					c, err := prev()
					if err == nil {
						return c, nil
					}
					done = true
					if err != io.EOF {
						sent = true
						return nil, err
					}
				}
				if sent {
					return nil, io.EOF
				}
				sent = true
				return encode(tail), nil
			}
		}
		return s, nil
	}
}

func payloadSanitizer(b behavior) baton.SanitizerFunc {
	return func(_ baton.CallInfo, payload json.RawMessage) (json.RawMessage, error) {
		if err := b.failure(); err != nil {
			return nil, err
		}
		if b.boolean("omit") {
			return nil, nil
		}
		v := decode(payload)
		var err error
		if edits, ok := b["set"]; ok {
			if v, err = setAll(v, edits); err != nil {
				return nil, err
			}
		}
		if rm, ok := b["remove"].([]any); ok {
			for _, p := range rm {
				ps, _ := p.(string)
				if v, err = removePtr(v, ps); err != nil {
					return nil, err
				}
			}
		}
		return encode(v), nil
	}
}

func eventSanitizer(b behavior) baton.EventSanitizerFunc {
	return func(_ baton.EventInfo, f baton.EventFields) (*baton.EventFields, error) {
		if err := b.failure(); err != nil {
			return nil, err
		}
		if m, ok := b["set_metadata"].(map[string]any); ok {
			f.Metadata = m
		}
		if d, ok := b["set_data"]; ok {
			f.Data = encode(d)
		}
		return &f, nil
	}
}

// middleware builds the middleware of family kind that acts out behaviour b.
func middleware(kind, name string, raw any, rec *recorders) (baton.Middleware, error) {
	b, ok := raw.(map[string]any)
	if !ok {
		return baton.Middleware{}, &baton.Error{Kind: baton.KindInvalidArgument, Message: fmt.Sprintf("behavior: expected an object, got %s", encode(raw))}
	}
	bh := behavior(b)
	switch baton.Family(kind) {
	case baton.FamilyToolConditionalExecution:
		return baton.ToolGuardrail(name, guardrail(bh)), nil
	case baton.FamilyLLMConditionalExecution:
		return baton.LLMGuardrail(name, guardrail(bh)), nil
	case baton.FamilyToolRequestIntercept:
		return baton.ToolRequestIntercept(name, requestIntercept(bh)), nil
	case baton.FamilyLLMRequestIntercept:
		return baton.LLMRequestIntercept(name, requestIntercept(bh)), nil
	case baton.FamilyToolExecutionIntercept:
		return baton.ToolExecutionIntercept(name, executionIntercept(bh)), nil
	case baton.FamilyLLMExecutionIntercept:
		return baton.LLMExecutionIntercept(name, executionIntercept(bh)), nil
	case baton.FamilyLLMStreamExecutionIntercept:
		return baton.LLMStreamExecutionIntercept(name, streamIntercept(bh)), nil
	case baton.FamilyToolSanitizeRequest:
		return baton.ToolSanitizeRequest(name, payloadSanitizer(bh)), nil
	case baton.FamilyToolSanitizeResponse:
		return baton.ToolSanitizeResponse(name, payloadSanitizer(bh)), nil
	case baton.FamilyLLMSanitizeRequest:
		return baton.LLMSanitizeRequest(name, payloadSanitizer(bh)), nil
	case baton.FamilyLLMSanitizeResponse:
		return baton.LLMSanitizeResponse(name, payloadSanitizer(bh)), nil
	case baton.FamilyMarkSanitize:
		return baton.MarkSanitizer(name, eventSanitizer(bh)), nil
	case baton.FamilyScopeSanitizeStart:
		return baton.ScopeStartSanitizer(name, eventSanitizer(bh)), nil
	case baton.FamilyScopeSanitizeEnd:
		return baton.ScopeEndSanitizer(name, eventSanitizer(bh)), nil
	case baton.FamilyEventMetadataInjector:
		return baton.MetadataInjector(name, func(baton.EventInfo) (map[string]any, error) {
			if err := bh.failure(); err != nil {
				return nil, err
			}
			m, _ := bh["inject"].(map[string]any)
			return m, nil
		}), nil
	case baton.FamilySubscriber:
		if err := bh.failure(); err != nil {
			return baton.Subscriber(name, func(json.RawMessage) error { return err }), nil
		}
		rec.ensure(name)
		return baton.Subscriber(name, func(e json.RawMessage) error {
			rec.record(name, e)
			return nil
		}), nil
	default:
		return baton.Middleware{}, &baton.Error{Kind: baton.KindInvalidArgument, Message: fmt.Sprintf("unknown middleware kind '%s'", kind)}
	}
}
