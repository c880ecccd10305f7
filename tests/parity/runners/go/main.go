// The Go parity runner: executes one scenario (tests/parity/README.md) through the Go
// package's public API and prints {events, subscribers, results} as JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/baton-runtime/baton/go/baton"
)

const (
	recorderName = "parity.recorder"
	flushTimeout = 30 * time.Second
)

// A REF names a value, a scope, a stack (a context carrying it) or a manual call.
type ref struct {
	value any
	scope *baton.Scope
	stack context.Context
	call  *baton.Call
}

type runner struct {
	rt      *baton.Runtime
	cur     context.Context
	refs    map[string]ref
	results map[string]any
	rec     *recorders
	outDir  string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: baton-parity-go SCENARIO.json")
		os.Exit(2)
	}
	out, err := run(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario failed:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
	os.Stdout.Write([]byte("\n"))
}

func run(path string) ([]byte, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, err)
	}
	scenario, ok := decode(text).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: invalid JSON", path)
	}
	steps, ok := scenario["steps"].([]any)
	if !ok {
		return nil, errors.New("scenario has no steps array")
	}
	outDir, err := os.MkdirTemp("", "baton-parity-go-")
	if err != nil {
		return nil, fmt.Errorf("cannot create OUT dir: %v", err)
	}
	defer os.RemoveAll(outDir)
	r := &runner{
		rt:      baton.Default(),
		cur:     baton.NewStack(context.Background()),
		refs:    map[string]ref{},
		results: map[string]any{},
		rec:     &recorders{events: map[string][]json.RawMessage{}},
		outDir:  outDir,
	}
	rec, err := middleware("subscriber", recorderName, map[string]any{"record": true}, r.rec)
	if err != nil {
		return nil, err
	}
	if err := r.rt.Register(rec); err != nil {
		return nil, err
	}
	outcome := r.runSteps(steps)
	if _, err := r.rt.Flush(flushTimeout); err != nil && !errors.Is(err, baton.ErrAlreadyShutdown) {
		return nil, fmt.Errorf("final flush: %v", err)
	}
	if outcome != nil {
		return nil, outcome
	}
	r.rec.mu.Lock()
	events := r.rec.events[recorderName]
	delete(r.rec.events, recorderName)
	subs := r.rec.events
	r.rec.mu.Unlock()
	if events == nil {
		events = []json.RawMessage{}
	}
	return json.Marshal(map[string]any{"events": events, "subscribers": subs, "results": r.results})
}

func (r *runner) runSteps(steps []any) error {
	for i, raw := range steps {
		step, _ := r.resolve(raw).(map[string]any)
		if step == nil {
			return fmt.Errorf("step %d is not an object", i)
		}
		op, _ := step["op"].(string)
		result, err := r.exec(op, step)
		expect, hasExpect := step["expect_error"].(string)
		switch {
		case err == nil && hasExpect:
			return fmt.Errorf("step %d (%s) succeeded but expected error %s", i, op, expect)
		case err != nil && hasExpect && string(baton.KindOf(err)) == expect:
			result = &ref{value: map[string]any{"error": expect}}
		case err != nil && hasExpect:
			return fmt.Errorf("step %d (%s) failed with %v (kind %s), expected %s", i, op, err, baton.KindOf(err), expect)
		case err != nil:
			return fmt.Errorf("step %d (%s) failed: %v", i, op, err)
		}
		if name, ok := step["as"].(string); ok && result != nil {
			if result.stack != nil || result.scope != nil || result.call != nil {
				r.results[name] = "<handle>"
			} else {
				r.results[name] = result.value
			}
			r.refs[name] = *result
		}
	}
	return nil
}

// resolve replaces every {"$ref": REF} with the stored result and ${OUT} with the temp dir.
func (r *runner) resolve(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if name, ok := x["$ref"].(string); ok {
				if found, ok := r.results[name]; ok {
					return decode(encode(found))
				}
				return x
			}
		}
		m := make(map[string]any, len(x))
		for k, vv := range x {
			m[k] = r.resolve(vv)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, vv := range x {
			a[i] = r.resolve(vv)
		}
		return a
	case string:
		return strings.ReplaceAll(x, "${OUT}", r.outDir)
	default:
		return v
	}
}

func invalid(format string, args ...any) error {
	return &baton.Error{Kind: baton.KindInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &baton.Error{Kind: baton.KindNotFound, Message: fmt.Sprintf(format, args...)}
}

func str(step map[string]any, k string) (string, bool) {
	s, ok := step[k].(string)
	return s, ok
}

func reqStr(step map[string]any, k string) (string, error) {
	if s, ok := str(step, k); ok {
		return s, nil
	}
	return "", invalid("step.%s: missing or not a string", k)
}

func (r *runner) scopeRef(step map[string]any, k string) (*baton.Scope, error) {
	v, ok := step[k]
	if !ok || v == nil {
		return nil, nil
	}
	name, ok := v.(string)
	if !ok {
		return nil, notFound("%s: %s does not name a scope", k, encode(v))
	}
	got, ok := r.refs[name]
	if !ok {
		return nil, notFound("%s: no step stored '%s'", k, name)
	}
	if got.scope == nil {
		return nil, notFound("%s: '%s' does not name a scope", k, name)
	}
	return got.scope, nil
}

func val(v any) (*ref, error) { return &ref{value: v}, nil }

// common options of scopes, marks and calls.
func (r *runner) opts(step map[string]any, keys ...string) ([]baton.Option, error) {
	var o []baton.Option
	for _, k := range keys {
		v, present := step[k]
		if !present {
			continue
		}
		switch k {
		case "metadata":
			if m, ok := v.(map[string]any); ok {
				o = append(o, baton.Metadata(m))
			}
		case "attributes":
			if a, ok := v.([]any); ok {
				flags := []string{}
				for _, f := range a {
					if s, ok := f.(string); ok {
						flags = append(flags, s)
					}
				}
				o = append(o, baton.Attributes(flags...))
			}
		case "input":
			o = append(o, baton.Input(encode(v)))
		case "data":
			o = append(o, baton.Data(encode(v)))
		case "output", "result", "response":
			o = append(o, baton.Output(encode(v)))
		case "category":
			if s, ok := v.(string); ok {
				o = append(o, baton.Category(s))
			}
		case "category_profile":
			if v != nil {
				o = append(o, baton.CategoryProfile(encode(v)))
			}
		case "data_schema":
			if d, ok := v.(map[string]any); ok {
				n, _ := d["name"].(string)
				ver, _ := d["version"].(string)
				o = append(o, baton.DataSchema(n, ver))
			}
		case "tool_call_id":
			if s, ok := v.(string); ok {
				o = append(o, baton.ToolCallID(s))
			}
		case "model_name":
			if s, ok := v.(string); ok {
				o = append(o, baton.ModelName(s))
			}
		case "codec":
			if s, ok := v.(string); ok {
				o = append(o, baton.Codec(s))
			} else if v != nil {
				return nil, invalid("step.codec: expected a codec name, got %s", encode(v))
			}
		case "response_codec":
			if s, ok := v.(string); ok {
				o = append(o, baton.ResponseCodec(s))
			} else if v != nil {
				return nil, invalid("step.response_codec: expected a codec name, got %s", encode(v))
			}
		case "chunk_marks":
			if b, ok := v.(bool); ok {
				o = append(o, baton.ChunkMarks(b))
			}
		case "error":
			msg, ok := v.(string)
			if !ok {
				msg = "error"
			}
			o = append(o, baton.WithError(errors.New(msg)))
		case "parent":
			p, err := r.scopeRef(step, "parent")
			if err != nil {
				return nil, err
			}
			if p != nil {
				o = append(o, baton.Parent(p))
			}
		}
	}
	return o, nil
}

// implFn is the host callback of a managed call, per the scenario's impl.
func implFn(imp map[string]any) baton.ToolFunc {
	return func(ctx context.Context, input json.RawMessage) (any, error) {
		if err := emitMarks(ctx, imp); err != nil {
			return nil, err
		}
		if msg, ok := imp["fail"].(string); ok {
			return nil, errors.New(msg)
		}
		if echo, _ := imp["echo"].(bool); echo {
			return input, nil
		}
		return encode(imp["return"]), nil
	}
}

func emitMarks(ctx context.Context, imp map[string]any) error {
	marks, _ := imp["marks"].([]any)
	for _, m := range marks {
		mm, _ := m.(map[string]any)
		name, ok := mm["name"].(string)
		if !ok {
			name = "mark"
		}
		var o []baton.Option
		if d, ok := mm["data"]; ok {
			o = append(o, baton.Data(encode(d)))
		}
		if err := baton.Mark(ctx, name, o...); err != nil {
			return err
		}
	}
	return nil
}

// implChunks is the chunk source of a streaming impl (failing after fail_after chunks).
func implChunks(imp map[string]any) baton.ChunkSource {
	chunks, _ := imp["chunks"].([]any)
	failAfter := -1
	if n, ok := imp["fail_after"].(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			failAfter = int(i)
		}
	}
	i := 0
	return func() (json.RawMessage, error) {
		if failAfter >= 0 && i >= failAfter {
			msg, ok := imp["fail"].(string)
			if !ok {
				msg = fmt.Sprintf("stream failed after %d chunks", failAfter)
			}
			i = len(chunks) + 1
			failAfter = -1
			return nil, errors.New(msg)
		}
		if i >= len(chunks) {
			return nil, io.EOF
		}
		c := chunks[i]
		i++
		return encode(c), nil
	}
}

func (r *runner) exec(op string, step map[string]any) (*ref, error) {
	ctx := r.cur
	switch op {
	case "push":
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		o, err := r.opts(step, "input", "metadata", "attributes", "category_profile", "parent")
		if err != nil {
			return nil, err
		}
		cat, ok := str(step, "category")
		if !ok {
			cat = "function"
		}
		o = append(o, baton.Category(cat))
		next, s := baton.StartScope(ctx, name, o...)
		if s.Err() != nil {
			return nil, s.Err()
		}
		r.cur = next
		return &ref{scope: s}, nil
	case "pop":
		s, err := r.scopeRef(step, "scope")
		if err != nil {
			return nil, err
		}
		if s == nil {
			return nil, invalid("pop: step.scope is required")
		}
		o, err := r.opts(step, "output", "metadata", "error")
		if err != nil {
			return nil, err
		}
		return nil, s.End(o...)
	case "mark":
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		o, err := r.opts(step, "data", "metadata", "parent", "category", "category_profile", "data_schema")
		if err != nil {
			return nil, err
		}
		return nil, baton.Mark(ctx, name, o...)
	case "metric":
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		var o []baton.Option
		if u, ok := str(step, "unit"); ok {
			o = append(o, baton.Unit(u))
		}
		return nil, baton.Metric(ctx, name, encode(step["measurements"]), o...)
	case "new_stack":
		return &ref{stack: baton.NewStack(ctx)}, nil
	case "fork":
		return &ref{stack: baton.Fork(ctx)}, nil
	case "from_propagation":
		c, err := baton.FromPropagationJSON(ctx, encode(step["context"]))
		if err != nil {
			return nil, err
		}
		return &ref{stack: c}, nil
	case "with_stack":
		name, err := reqStr(step, "stack")
		if err != nil {
			return nil, err
		}
		got, ok := r.refs[name]
		if !ok || got.stack == nil {
			return nil, notFound("stack: '%s' does not name a stack", name)
		}
		nested, _ := step["steps"].([]any)
		saved := r.cur
		r.cur = got.stack
		err = r.runSteps(nested)
		r.cur = saved
		if err != nil {
			return nil, &baton.Error{Kind: baton.KindInternal, Message: err.Error()}
		}
		return nil, nil
	case "propagation_context":
		p, err := baton.PropagationContext(ctx)
		if err != nil {
			return nil, err
		}
		return val(decode(encode(p)))
	case "traceparent":
		t, err := baton.Traceparent(ctx)
		if err != nil {
			return nil, err
		}
		return val(t)
	case "flush":
		_, err := r.rt.Flush(flushTimeout)
		return nil, err
	case "shutdown":
		done, err := r.rt.Shutdown(flushTimeout)
		if err != nil {
			return nil, err
		}
		return val(done)
	case "diagnostics":
		if _, err := r.rt.Flush(flushTimeout); err != nil {
			return nil, err
		}
		d, err := r.rt.Diagnostics()
		if err != nil {
			return nil, err
		}
		return val(map[string]any{"dropped_events": d.DroppedEvents, "subscriber_failures": d.SubscriberFailures, "middleware_failures": d.MiddlewareFailures})
	case "tool", "llm":
		// Go has no separate async form: "async": true uses the same call.
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		imp, _ := step["impl"].(map[string]any)
		var v json.RawMessage
		if op == "tool" {
			o, err := r.opts(step, "tool_call_id", "metadata", "attributes", "parent")
			if err != nil {
				return nil, err
			}
			v, err = baton.Tool(ctx, name, encode(step["args"]), implFn(imp), o...)
			if err != nil {
				return nil, err
			}
		} else {
			o, err := r.opts(step, "model_name", "metadata", "attributes", "parent", "codec", "response_codec")
			if err != nil {
				return nil, err
			}
			v, err = baton.LLM(ctx, name, encode(step["request"]), implFn(imp), o...)
			if err != nil {
				return nil, err
			}
		}
		return val(decode(v))
	case "llm_stream":
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		imp, _ := step["impl"].(map[string]any)
		o, err := r.opts(step, "model_name", "metadata", "attributes", "parent", "chunk_marks", "codec", "response_codec")
		if err != nil {
			return nil, err
		}
		s, err := baton.LLMStream(ctx, name, encode(step["request"]), func(ctx context.Context, _ json.RawMessage) (baton.ChunkSource, error) {
			if err := emitMarks(ctx, imp); err != nil {
				return nil, err
			}
			return implChunks(imp), nil
		}, o...)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		take := -1
		if n, ok := step["take"].(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				take = int(i)
			}
		}
		got := []any{}
		for take < 0 || len(got) < take {
			c, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			got = append(got, decode(c))
		}
		// `take: n` stops after n chunks; Close drops the stream (it ends as cancelled).
		if err := s.Close(); err != nil {
			return nil, err
		}
		return val(got)
	case "tool_start", "llm_start":
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		var c *baton.Call
		if op == "tool_start" {
			o, err := r.opts(step, "tool_call_id", "metadata", "attributes", "parent")
			if err != nil {
				return nil, err
			}
			c, err = baton.StartTool(ctx, name, encode(step["args"]), o...)
			if err != nil {
				return nil, err
			}
		} else {
			o, err := r.opts(step, "model_name", "metadata", "attributes", "parent")
			if err != nil {
				return nil, err
			}
			c, err = baton.StartLLM(ctx, name, encode(step["request"]), o...)
			if err != nil {
				return nil, err
			}
		}
		return &ref{call: c}, nil
	case "tool_end", "llm_end":
		name, err := reqStr(step, "handle")
		if err != nil {
			return nil, err
		}
		got, ok := r.refs[name]
		if !ok || got.call == nil {
			return nil, notFound("handle: '%s' does not name a call handle", name)
		}
		key := "result"
		if op == "llm_end" {
			key = "response"
		}
		o, err := r.opts(step, key, "metadata", "error")
		if err != nil {
			return nil, err
		}
		return nil, got.call.End(o...)
	case "tool_conditional_execution":
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		if err := baton.ToolConditionalExecution(ctx, name, encode(step["args"])); err != nil {
			return nil, err
		}
		return val(nil)
	case "llm_conditional_execution":
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		if err := baton.LLMConditionalExecution(ctx, name, encode(step["request"])); err != nil {
			return nil, err
		}
		return val(nil)
	case "tool_request_intercepts", "llm_request_intercepts":
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if op == "tool_request_intercepts" {
			v, err = baton.ToolRequestIntercepts(ctx, name, encode(step["args"]))
		} else {
			v, err = baton.LLMRequestIntercepts(ctx, name, encode(step["request"]))
		}
		if err != nil {
			return nil, err
		}
		return val(decode(v))
	case "register":
		kind, err := reqStr(step, "kind")
		if err != nil {
			return nil, err
		}
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		b, ok := step["behavior"]
		if !ok {
			b = map[string]any{}
		}
		m, err := middleware(kind, name, b, r.rec)
		if err != nil {
			return nil, err
		}
		var o []baton.RegisterOption
		if p, ok := step["priority"].(json.Number); ok {
			if i, err := p.Int64(); err == nil {
				o = append(o, baton.Priority(int32(i)))
			}
		}
		if bc, _ := step["break_chain"].(bool); bc {
			o = append(o, baton.BreakChain())
		}
		s, err := r.scopeRef(step, "scope")
		if err != nil {
			return nil, err
		}
		if s != nil {
			o = append(o, baton.OnScope(s))
		}
		return nil, r.rt.Register(m, o...)
	case "deregister":
		kind, err := reqStr(step, "kind")
		if err != nil {
			return nil, err
		}
		name, err := reqStr(step, "name")
		if err != nil {
			return nil, err
		}
		s, err := r.scopeRef(step, "scope")
		if err != nil {
			return nil, err
		}
		var o []baton.RegisterOption
		if s != nil {
			o = append(o, baton.OnScope(s))
		}
		removed, err := r.rt.Deregister(baton.Family(kind), name, o...)
		if err != nil {
			return nil, err
		}
		return val(removed)
	case "read_jsonl":
		p, err := reqStr(step, "path")
		if err != nil {
			return nil, err
		}
		text, err := readMatching(p)
		if err != nil {
			return nil, err
		}
		lines := []any{}
		for _, l := range strings.Split(text, "\n") {
			if strings.TrimSpace(l) == "" {
				continue
			}
			v := decode([]byte(l))
			if v == nil && strings.TrimSpace(l) != "null" {
				return nil, invalid("%s: invalid JSON line", p)
			}
			lines = append(lines, v)
		}
		return val(lines)
	case "read_json":
		p, err := reqStr(step, "path")
		if err != nil {
			return nil, err
		}
		text, err := readMatching(p)
		if err != nil {
			return nil, err
		}
		return val(decode([]byte(text)))
	case "plugin_validate":
		d, err := r.rt.PluginValidate(encode(step["config"]))
		if err != nil {
			return nil, err
		}
		return val(decode(encode(d)))
	case "plugin_initialize":
		rep, err := r.rt.PluginInitialize(encode(step["config"]))
		if err != nil {
			return nil, err
		}
		return val(decode(encode(rep)))
	case "plugin_clear":
		return nil, r.rt.PluginClear()
	case "codec_decode_request", "codec_encode_request", "codec_decode_response", "codec_aggregate_stream":
		return r.codecOp(op, step)
	default:
		return nil, invalid("unknown op '%s'", op)
	}
}

// readMatching reads the one file matching path (`*` wildcards in the last component).
func readMatching(path string) (string, error) {
	target := path
	if strings.Contains(filepath.Base(path), "*") {
		matches, err := filepath.Glob(path)
		if err != nil {
			return "", invalid("path '%s': %v", path, err)
		}
		switch len(matches) {
		case 1:
			target = matches[0]
		case 0:
			return "", invalid("path '%s': no file matches", path)
		default:
			return "", invalid("path '%s': %d files match", path, len(matches))
		}
	}
	b, err := os.ReadFile(target)
	if err != nil {
		return "", invalid("path '%s': %v", target, err)
	}
	return string(b), nil
}

// codecOp runs one codec_* op through the package's codec functions.
func (r *runner) codecOp(op string, step map[string]any) (*ref, error) {
	field := func(k string) (any, error) {
		v, ok := step[k]
		if !ok {
			return nil, invalid("step.%s: missing", k)
		}
		return v, nil
	}
	c, ok := step["codec"].(string)
	if !ok {
		return nil, invalid("step.codec: expected a string")
	}
	var out json.RawMessage
	var err error
	switch op {
	case "codec_decode_request":
		var req any
		if req, err = field("request"); err == nil {
			out, err = baton.DecodeRequest(c, encode(req))
		}
	case "codec_encode_request":
		var n, o any
		if n, err = field("normalized"); err == nil {
			if o, err = field("original"); err == nil {
				out, err = baton.EncodeRequest(c, encode(n), encode(o))
			}
		}
	case "codec_decode_response":
		var resp any
		if resp, err = field("response"); err == nil {
			out, err = baton.DecodeResponse(c, encode(resp))
		}
	default:
		var chunks any
		if chunks, err = field("chunks"); err == nil {
			out, err = baton.AggregateStream(c, encode(chunks))
		}
	}
	if err != nil {
		return nil, err
	}
	return val(decode(out))
}
