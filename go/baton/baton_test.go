package baton_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-runtime/baton/go/baton"
)

// event is the part of an ATOF event the tests look at.
type event struct {
	Kind          string          `json:"kind"`
	ScopeCategory string          `json:"scope_category"`
	UUID          string          `json:"uuid"`
	ParentUUID    *string         `json:"parent_uuid"`
	Name          string          `json:"name"`
	Category      string          `json:"category"`
	Data          json.RawMessage `json:"data"`
	Metadata      map[string]any  `json:"metadata"`
}

type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) fn(raw json.RawMessage) error {
	var e event
	if err := json.Unmarshal(raw, &e); err != nil {
		return err
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

func (r *recorder) names() []string {
	var out []string
	for _, e := range r.all() {
		tag := e.Kind
		if e.ScopeCategory != "" {
			tag = e.ScopeCategory
		}
		out = append(out, tag+":"+e.Name)
	}
	return out
}

// newRuntime gives each test its own runtime with a recording subscriber.
func newRuntime(t *testing.T) (*baton.Runtime, *recorder, context.Context) {
	t.Helper()
	rt, err := baton.NewRuntime()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := rt.Register(baton.Subscriber("rec", rec.fn)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = rt.Shutdown(5 * time.Second)
		_ = rt.Close()
	})
	return rt, rec, baton.WithRuntime(context.Background(), rt)
}

func flush(t *testing.T, rt *baton.Runtime) {
	t.Helper()
	done, err := rt.Flush(2 * time.Minute)
	if err != nil || !done {
		t.Fatalf("flush: %v %v", done, err)
	}
}

func add(_ context.Context, args json.RawMessage) (any, error) {
	var a struct{ A, B int }
	if err := json.Unmarshal(args, &a); err != nil {
		return nil, err
	}
	return a.A + a.B, nil
}

func TestScopeToolAndEvents(t *testing.T) {
	rt, rec, ctx := newRuntime(t)
	ctx, agent := baton.StartScope(ctx, "agent", baton.Category("agent"), baton.Input(map[string]int{"turn": 1}))
	if agent.Err() != nil {
		t.Fatal(agent.Err())
	}
	out, err := baton.Tool(ctx, "add", map[string]int{"a": 1, "b": 2}, add, baton.ToolCallID("c1"))
	if err != nil || string(out) != "3" {
		t.Fatalf("tool: %s %v", out, err)
	}
	if err := baton.Mark(ctx, "note", baton.Data("hi")); err != nil {
		t.Fatal(err)
	}
	if err := agent.End(baton.Output("done")); err != nil {
		t.Fatal(err)
	}
	flush(t, rt)
	got := strings.Join(rec.names(), " ")
	if got != "start:agent start:add end:add mark:note end:agent" {
		t.Fatalf("events: %s", got)
	}
	ev := rec.all()
	if ev[1].ParentUUID == nil || *ev[1].ParentUUID != agent.UUID() || ev[3].ParentUUID == nil || *ev[3].ParentUUID != agent.UUID() {
		t.Fatalf("tool and mark are not parented under the agent: %+v", ev)
	}
	if ev[0].ParentUUID != nil || ev[1].Category != "tool" || string(ev[2].Data) != "3" || string(ev[4].Data) != `"done"` {
		t.Fatalf("unexpected events: %+v", ev)
	}
	if !errors.Is(agent.End(), baton.ErrNotFound) {
		t.Fatal("ending twice must be not_found")
	}
}

func TestUnwindingAndExplicitParent(t *testing.T) {
	rt, rec, ctx := newRuntime(t)
	ctx, a := baton.StartScope(ctx, "a")
	ctx, b := baton.StartScope(ctx, "b")
	_, c := baton.StartScope(ctx, "c", baton.Parent(a))
	if err := a.End(); err != nil {
		t.Fatal(err)
	}
	flush(t, rt)
	ev := rec.all()
	if len(ev) != 6 {
		t.Fatalf("events: %v", rec.names())
	}
	if *ev[2].ParentUUID != a.UUID() {
		t.Fatal("explicit parent ignored")
	}
	if ev[3].Name != "c" || ev[3].Metadata["error.type"] != "unwound" || ev[4].Name != "b" || ev[4].Metadata["error.type"] != "unwound" {
		t.Fatalf("unwinding: %+v", ev[3:])
	}
	if !errors.Is(b.End(), baton.ErrNotFound) || !errors.Is(c.End(), baton.ErrNotFound) {
		t.Fatal("unwound scopes must be not_found")
	}
}

func TestErrorsAreMatchable(t *testing.T) {
	rt, rec, ctx := newRuntime(t)
	myErr := errors.New("disk full")
	_, err := baton.Tool(ctx, "save", nil, func(context.Context, json.RawMessage) (any, error) { return nil, myErr })
	if !errors.Is(err, myErr) || !errors.Is(err, baton.ErrCallbackFailed) {
		t.Fatalf("callback error: %v", err)
	}
	_, err = baton.Tool(ctx, "upstream", nil, func(context.Context, json.RawMessage) (any, error) {
		return nil, &baton.Error{Kind: baton.KindUpstream, Message: "503"}
	})
	if !errors.Is(err, baton.ErrUpstream) {
		t.Fatalf("a Baton error keeps its kind: %v", err)
	}
	_, err = baton.Tool(ctx, "bad", json.RawMessage("{nope"), add)
	if !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("invalid JSON: %v", err)
	}
	_, err = baton.LLM(ctx, "llm", map[string]any{"headers": map[string]any{}}, add)
	if !errors.Is(err, baton.ErrInvalidArgument) || !strings.Contains(err.Error(), "content") {
		t.Fatalf("invalid request: %v", err)
	}
	_, err = baton.Tool(ctx, "boom", nil, func(context.Context, json.RawMessage) (any, error) { panic("kaput") })
	if !errors.Is(err, baton.ErrInternal) || !strings.Contains(err.Error(), "kaput") {
		t.Fatalf("panic: %v", err)
	}
	if _, err := baton.Tool(ctx, "add", map[string]int{"a": 1}, add); err != nil {
		t.Fatalf("runtime unusable after a panic: %v", err)
	}
	flush(t, rt)
	ev := rec.all()
	if ev[1].Metadata["otel.status_code"] != "ERROR" || ev[1].Metadata["otel.status_description"] != "disk full" || ev[1].Metadata["error.type"] != "callback_failed" {
		t.Fatalf("end of a failed call: %+v", ev[1])
	}
}

func TestMiddlewareFamilies(t *testing.T) {
	rt, rec, ctx := newRuntime(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rt.Register(baton.ToolGuardrail("no-rm", func(c baton.CallInfo, _ json.RawMessage) (baton.Decision, error) {
		if c.Name == "rm" {
			return baton.Reject("dangerous"), nil
		}
		return baton.Allow(), nil
	})))
	must(rt.Register(baton.ToolRequestIntercept("defaults", func(_ baton.CallInfo, in json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		_ = json.Unmarshal(in, &m)
		m["b"] = 40
		return json.Marshal(m)
	})))
	calls := 0
	must(rt.Register(baton.ToolExecutionIntercept("retry", func(c *baton.CallContext, in json.RawMessage, next baton.Next) (json.RawMessage, error) {
		if err := c.QueueMark("retrying", map[string]string{"tool": c.Info.Name}, nil); err != nil {
			return nil, err
		}
		out, err := next(in)
		if err != nil {
			out, err = next(in)
		}
		return out, err
	}), baton.Priority(-1)))
	must(rt.Register(baton.ToolSanitizeResponse("hide", func(_ baton.CallInfo, _ json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`"<hidden>"`), nil
	})))
	must(rt.Register(baton.MetadataInjector("env", func(baton.EventInfo) (map[string]any, error) {
		return map[string]any{"deploy.env": "test"}, nil
	})))
	if err := rt.Register(baton.MetadataInjector("env", nil)); !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("nil func: %v", err)
	}
	if err := rt.Register(baton.MetadataInjector("env", func(baton.EventInfo) (map[string]any, error) { return nil, nil })); !errors.Is(err, baton.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	flaky := func(ctx context.Context, args json.RawMessage) (any, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("flaky")
		}
		return add(ctx, args)
	}
	out, err := baton.Tool(ctx, "sum", map[string]int{"a": 2}, flaky)
	if err != nil || string(out) != "42" || calls != 2 {
		t.Fatalf("intercepted call: %s %v calls=%d", out, err, calls)
	}
	_, err = baton.Tool(ctx, "rm", nil, add)
	if !errors.Is(err, baton.ErrGuardrailRejected) || !strings.Contains(err.Error(), "dangerous") {
		t.Fatalf("guardrail: %v", err)
	}
	if err := baton.ToolConditionalExecution(ctx, "rm", nil); !errors.Is(err, baton.ErrGuardrailRejected) {
		t.Fatalf("standalone guardrail: %v", err)
	}
	rewritten, err := baton.ToolRequestIntercepts(ctx, "sum", map[string]int{"a": 1})
	if err != nil || string(rewritten) != `{"a":1,"b":40}` {
		t.Fatalf("standalone intercepts: %s %v", rewritten, err)
	}
	removed, err := rt.Deregister(baton.FamilyEventMetadataInjector, "env")
	if err != nil || !removed {
		t.Fatalf("deregister: %v %v", removed, err)
	}
	if removed, _ := rt.Deregister(baton.FamilyEventMetadataInjector, "env"); removed {
		t.Fatal("second deregister must report false")
	}
	flush(t, rt)
	ev := rec.all()
	names := strings.Join(rec.names(), " ")
	want := "start:no-rm end:no-rm start:sum end:sum mark:retrying start:no-rm end:no-rm mark:rm start:no-rm end:no-rm mark:rm"
	if names != want {
		t.Fatalf("events:\n got %s\nwant %s", names, want)
	}
	if string(ev[3].Data) != `"<hidden>"` || ev[3].Metadata["deploy.env"] != "test" {
		t.Fatalf("sanitized end: %+v", ev[3])
	}
}

func TestReentrancyIsInvalidState(t *testing.T) {
	rt, _, ctx := newRuntime(t)
	var inner error
	if err := rt.Register(baton.ToolGuardrail("nested", func(baton.CallInfo, json.RawMessage) (baton.Decision, error) {
		_, inner = baton.Tool(ctx, "nested", nil, add)
		return baton.Allow(), nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := baton.Tool(ctx, "outer", map[string]int{}, add); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, baton.ErrInvalidState) {
		t.Fatalf("a managed call from middleware: %v", inner)
	}
}

func TestStreams(t *testing.T) {
	rt, rec, ctx := newRuntime(t)
	if err := rt.Register(baton.LLMStreamExecutionIntercept("upper", func(_ baton.CallInfo, inner baton.ChunkSource) (baton.ChunkSource, error) {
		return func() (json.RawMessage, error) {
			c, err := inner()
			if err != nil {
				return nil, err
			}
			return json.RawMessage(strings.ToUpper(string(c))), nil
		}, nil
	})); err != nil {
		t.Fatal(err)
	}
	chunks := func(items ...string) baton.StreamFunc {
		return func(context.Context, json.RawMessage) (baton.ChunkSource, error) {
			i := 0
			return func() (json.RawMessage, error) {
				if i == len(items) {
					return nil, io.EOF
				}
				i++
				return json.RawMessage(`"` + items[i-1] + `"`), nil
			}, nil
		}
	}
	req := map[string]any{"headers": map[string]string{"authorization": "secret"}, "content": map[string]any{}}
	s, err := baton.LLMStream(ctx, "chat", req, chunks("a", "b"), baton.ModelName("m"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		c, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(c))
	}
	if strings.Join(got, ",") != `"A","B"` {
		t.Fatalf("chunks: %v", got)
	}
	s2, err := baton.LLMStream(ctx, "cut", req, chunks("x", "y"), baton.ChunkMarks(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Next(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	flush(t, rt)
	ev := rec.all()
	if strings.Join(rec.names(), " ") != "start:chat mark:llm.chunk mark:llm.chunk end:chat start:cut end:cut" {
		t.Fatalf("events: %v", rec.names())
	}
	if strings.Contains(string(ev[0].Data), "secret") {
		t.Fatal("credential header leaked into an event")
	}
	if string(ev[3].Data) != `["A","B"]` || ev[5].Metadata["error.type"] != "cancelled" {
		t.Fatalf("stream ends: %+v %+v", ev[3], ev[5])
	}
}

func TestManualLifecycleAndPropagation(t *testing.T) {
	rt, rec, ctx := newRuntime(t)
	ctx, root := baton.StartScope(ctx, "root")
	call, err := baton.StartTool(ctx, "search", map[string]string{"q": "go"}, baton.ToolCallID("t1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := call.End(baton.Output([]string{"r1"})); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(call.End(), baton.ErrNotFound) {
		t.Fatal("ending a call twice must be not_found")
	}
	p, err := baton.PropagationContext(ctx)
	if err != nil || p.Version != 1 || p.RootUUID != root.UUID() || *p.ParentUUID != root.UUID() {
		t.Fatalf("propagation: %+v %v", p, err)
	}
	tp, err := baton.Traceparent(ctx)
	if err != nil || !strings.HasPrefix(tp, "00-"+strings.ReplaceAll(root.UUID(), "-", "")+"-") {
		t.Fatalf("traceparent: %s %v", tp, err)
	}
	remote, err := baton.FromPropagation(baton.WithRuntime(context.Background(), rt), p)
	if err != nil {
		t.Fatal(err)
	}
	_, child := baton.StartScope(remote, "remote-child")
	_ = child.End()
	if _, err := baton.Traceparent(baton.NewStack(ctx)); !errors.Is(err, baton.ErrInvalidState) {
		t.Fatalf("traceparent of an empty stack: %v", err)
	}
	_ = root.End()
	flush(t, rt)
	ev := rec.all()
	if *ev[3].ParentUUID != root.UUID() || ev[3].Name != "remote-child" {
		t.Fatalf("remote child: %+v", ev[3])
	}
}

func TestScopeLocalSubscriberAndShutdown(t *testing.T) {
	rt, _, ctx := newRuntime(t)
	ctx, s := baton.StartScope(ctx, "task")
	local := &recorder{}
	if err := rt.Register(baton.Subscriber("local", local.fn), baton.OnScope(s)); err != nil {
		t.Fatal(err)
	}
	_ = baton.Mark(ctx, "inside")
	_ = s.End()
	_ = baton.Mark(baton.NewStack(ctx), "outside")
	flush(t, rt)
	if strings.Join(local.names(), " ") != "mark:inside end:task" {
		t.Fatalf("scope-local subscriber: %v", local.names())
	}
	if done, err := rt.Shutdown(5 * time.Second); err != nil || !done {
		t.Fatal(err)
	}
	if _, err := baton.Tool(ctx, "late", map[string]int{}, add); !errors.Is(err, baton.ErrAlreadyShutdown) {
		t.Fatalf("after shutdown: %v", err)
	}
	if _, err := rt.Shutdown(time.Second); !errors.Is(err, baton.ErrAlreadyShutdown) {
		t.Fatalf("second shutdown: %v", err)
	}
}

func TestMetricsAndDiagnostics(t *testing.T) {
	rt, rec, ctx := newRuntime(t)
	if err := baton.Metric(ctx, "latency", []baton.Measurement{{Value: 1.5}}, baton.Unit("ms")); err != nil {
		t.Fatal(err)
	}
	if err := baton.Metric(ctx, "bad", "nan"); !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("bad metric: %v", err)
	}
	if err := rt.Register(baton.Subscriber("failing", func(json.RawMessage) error { return errors.New("no") })); err != nil {
		t.Fatal(err)
	}
	_ = baton.Mark(ctx, "m")
	flush(t, rt)
	d, err := rt.Diagnostics()
	if err != nil || d.SubscriberFailures != 1 {
		t.Fatalf("diagnostics: %+v %v", d, err)
	}
	if string(rec.all()[0].Data) != `{"measurements":[{"attributes":{},"value":1.5}],"unit":"ms"}` {
		t.Fatalf("metric: %s", rec.all()[0].Data)
	}
}

// 1,000 goroutines × 100 calls, each with its own context: every event is attributed to its
// own goroutine's root scope.
func TestConcurrentGoroutinesKeepSeparateTrees(t *testing.T) {
	const goroutines, calls = 1000, 100
	rt, rec, base := newRuntime(t)
	var wg sync.WaitGroup
	roots := make([]string, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ctx, root := baton.StartScope(base, "worker", baton.Metadata(map[string]any{"g": g}))
			roots[g] = root.UUID()
			for i := 0; i < calls; i++ {
				_, err := baton.Tool(ctx, "step", map[string]int{"g": g}, func(ctx context.Context, args json.RawMessage) (any, error) {
					return args, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
			if err := root.End(); err != nil {
				t.Error(err)
			}
		}(g)
	}
	wg.Wait()
	flush(t, rt)
	ev := rec.all()
	if len(ev) != goroutines*(2+2*calls) {
		t.Fatalf("got %d events, want %d", len(ev), goroutines*(2+2*calls))
	}
	rootOf := map[string]string{}
	for _, r := range roots {
		rootOf[r] = r
	}
	perRoot := map[string]int{}
	for _, e := range ev {
		if e.Name == "worker" {
			if e.ParentUUID != nil {
				t.Fatal("a worker root has a parent")
			}
			perRoot[e.UUID]++
			continue
		}
		r, ok := rootOf[*e.ParentUUID]
		if !ok {
			t.Fatalf("event %s parented under %s, which is no root", e.Name, *e.ParentUUID)
		}
		var args struct{ G int }
		if err := json.Unmarshal(e.Data, &args); err != nil || roots[args.G] != r {
			t.Fatalf("goroutine %d's call attributed to another root", args.G)
		}
		perRoot[r]++
	}
	for _, r := range roots {
		if perRoot[r] != 2+2*calls {
			t.Fatalf("root %s has %d events", r, perRoot[r])
		}
	}
}

func TestForkForConcurrentWork(t *testing.T) {
	rt, rec, ctx := newRuntime(t)
	ctx, parent := baton.StartScope(ctx, "fanout")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		child := baton.Fork(ctx)
		go func() {
			defer wg.Done()
			cctx, s := baton.StartScope(child, "branch")
			_, _ = baton.Tool(cctx, "t", map[string]int{}, add)
			_ = s.End()
		}()
	}
	wg.Wait()
	_ = parent.End()
	flush(t, rt)
	for _, e := range rec.all() {
		if e.Name == "branch" && *e.ParentUUID != parent.UUID() {
			t.Fatal("a forked branch is not parented under the fan-out scope")
		}
	}
}

func TestPluginsAndCodecs(t *testing.T) {
	rt, _, _ := newRuntime(t)
	d, err := rt.PluginValidate(map[string]any{"version": 1, "components": []any{map[string]any{"kind": "nope"}}})
	if err != nil || len(d) != 1 || d[0].Code != "unknown_component" {
		t.Fatalf("validate: %+v %v", d, err)
	}
	if _, err := rt.PluginInitialize(map[string]any{"version": 7}); !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("initialize an invalid document: %v", err)
	}
	rep, err := rt.PluginInitialize(map[string]any{"version": 1, "components": []any{}})
	if err != nil || len(rep.Components) != 0 {
		t.Fatalf("initialize: %+v %v", rep, err)
	}
	if err := rt.PluginClear(); err != nil {
		t.Fatal(err)
	}
	req := map[string]any{"model": "gpt", "messages": []any{map[string]any{"role": "user", "content": "hi"}}}
	n, err := baton.DecodeRequest("openai_chat", req)
	if err != nil || !strings.Contains(string(n), `"role":"user"`) {
		t.Fatalf("decode: %s %v", n, err)
	}
	back, err := baton.EncodeRequest("openai_chat", n, req)
	if err != nil || !strings.Contains(string(back), `"model":"gpt"`) {
		t.Fatalf("encode: %s %v", back, err)
	}
	if none, err := baton.DecodeRequest("auto", map[string]any{"what": 1}); err != nil || string(none) != "null" {
		t.Fatalf("auto on an unknown shape: %s %v", none, err)
	}
	if _, err := baton.DecodeResponse("no_such_codec", map[string]any{}); !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("unknown codec: %v", err)
	}
}

// With nothing registered a tool call only runs its callback; Go calls it without crossing
// into C, with the results and errors of the managed path.
func TestToolWithNothingRegistered(t *testing.T) {
	rt, err := baton.NewRuntime()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Close() }()
	ctx := baton.WithRuntime(context.Background(), rt)
	var seen string
	out, err := baton.Tool(ctx, "echo", map[string]int{"a": 1}, func(_ context.Context, in json.RawMessage) (any, error) {
		seen = string(in)
		return map[string]string{"ok": "yes"}, nil
	})
	if err != nil || seen != `{"a":1}` || string(out) != `{"ok":"yes"}` {
		t.Fatalf("echo: %s %s %v", seen, out, err)
	}
	boom := errors.New("boom")
	_, err = baton.Tool(ctx, "fail", nil, func(context.Context, json.RawMessage) (any, error) { return nil, boom })
	var be *baton.Error
	if !errors.Is(err, baton.ErrCallbackFailed) || !errors.Is(err, boom) || !errors.As(err, &be) || be.Message != "boom" {
		t.Fatalf("callback error: %#v", err)
	}
	_, err = baton.Tool(ctx, "panics", nil, func(context.Context, json.RawMessage) (any, error) { panic("bad") })
	if !errors.Is(err, baton.ErrInternal) || !strings.Contains(err.Error(), "panic: bad") {
		t.Fatalf("panic: %v", err)
	}
	_, err = baton.Tool(ctx, "t", json.RawMessage(`{"a":`), func(context.Context, json.RawMessage) (any, error) { return nil, nil })
	if !errors.Is(err, baton.ErrInvalidArgument) || !strings.Contains(err.Error(), "args_json") {
		t.Fatalf("invalid args: %v", err)
	}
	_, err = baton.Tool(ctx, "t", nil, func(context.Context, json.RawMessage) (any, error) { return json.RawMessage(`{"x"`), nil })
	if !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("invalid result: %v", err)
	}
	if _, err := baton.Tool(ctx, "", nil, func(context.Context, json.RawMessage) (any, error) { return nil, nil }); !errors.Is(err, baton.ErrInvalidArgument) {
		t.Fatalf("empty name: %v", err)
	}
	if d, err := rt.Diagnostics(); err != nil || d.DeliveredEvents != 0 {
		t.Fatalf("nothing is emitted: %+v %v", d, err)
	}
	if _, err := rt.Shutdown(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := baton.Tool(ctx, "late", nil, func(context.Context, json.RawMessage) (any, error) { return nil, nil }); !errors.Is(err, baton.ErrAlreadyShutdown) {
		t.Fatalf("after shutdown: %v", err)
	}
}

// The C library installs baton-otel: plugin documents may enable OpenTelemetry export (http
// and https, both transports) from Go.
func TestPluginOpenTelemetrySectionIsAvailable(t *testing.T) {
	rt, _, _ := newRuntime(t)
	doc := map[string]any{"version": 1, "components": []any{map[string]any{
		"kind": "observability", "enabled": true,
		"config": map[string]any{"version": 1, "opentelemetry": map[string]any{"enabled": true, "endpoints": []any{
			map[string]any{"type": "gen_ai", "endpoint": "https://collector.example:4318/v1/traces", "transport": "http_binary"},
			map[string]any{"type": "openinference", "endpoint": "http://127.0.0.1:9", "transport": "grpc"},
		}}},
	}}}
	d, err := rt.PluginValidate(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range d {
		if x.Level == "error" {
			t.Fatalf("validate: %+v", d)
		}
	}
	rep, err := rt.PluginInitialize(doc)
	if err != nil || len(rep.Components) != 1 || len(rep.Components[0].Registrations) == 0 {
		t.Fatalf("initialize: %+v %v", rep, err)
	}
	if err := rt.PluginClear(); err != nil {
		t.Fatal(err)
	}
}

// A subscriber may keep the bytes it is handed (and even append to them): events cross from
// Baton in batches that are copied into shared Go buffers, so each event must stay intact
// after later batches, whatever their sizes.
func TestSubscriberKeepsEventBytes(t *testing.T) {
	rt, err := baton.NewRuntime()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = rt.Shutdown(5 * time.Second); _ = rt.Close() }()
	var mu sync.Mutex
	var kept []json.RawMessage
	if err := rt.Register(baton.Subscriber("keep", func(ev json.RawMessage) error {
		mu.Lock()
		defer mu.Unlock()
		kept = append(kept, ev)
		if n := len(kept); n >= 2 {
			_ = append(kept[n-2], "garbage"...) // must not reach the event after it
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	ctx := baton.NewStack(baton.WithRuntime(context.Background(), rt))
	const calls = 300
	for i := 0; i < calls; i++ {
		// Sizes from a few bytes to beyond one Go buffer, so events straddle buffer ends.
		args := map[string]any{"i": i, "pad": strings.Repeat("x", (i*97)%20000)}
		if _, err := baton.Tool(ctx, "t", args, func(_ context.Context, in json.RawMessage) (any, error) { return in, nil }); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, rt)
	mu.Lock()
	defer mu.Unlock()
	if len(kept) != 2*calls {
		t.Fatalf("kept %d events, want %d", len(kept), 2*calls)
	}
	for k, raw := range kept {
		var e struct {
			ScopeCategory string `json:"scope_category"`
			Data          struct {
				I   int    `json:"i"`
				Pad string `json:"pad"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("event %d is no longer JSON: %v", k, err)
		}
		want := []string{"start", "end"}[k%2]
		if i := k / 2; e.ScopeCategory != want || e.Data.I != i || len(e.Data.Pad) != (i*97)%20000 {
			t.Fatalf("event %d: %s i=%d pad=%d, want %s i=%d pad=%d", k, e.ScopeCategory, e.Data.I, len(e.Data.Pad), want, i, (i*97)%20000)
		}
	}
}
