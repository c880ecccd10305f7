package baton_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/baton-runtime/baton/go/baton"
)

// The per-call cost of Baton from Go: a plain Go call of the same tool function, then managed
// tool calls with nothing registered, with one subscriber, and with the full middleware chain.
// The overhead per managed call is the difference to BenchmarkPlainCall (docs/c-go.md).

var benchArgs = json.RawMessage(`{"a":1,"b":2}`)

func benchTool(_ context.Context, args json.RawMessage) (any, error) { return args, nil }

func BenchmarkPlainCall(b *testing.B) {
	ctx := context.Background()
	var sink any
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for i := 0; i < b.N; i++ {
		v, err := benchTool(ctx, benchArgs)
		if err != nil {
			b.Fatal(err)
		}
		sink = v
	}
	_ = sink
}

func benchRuntime(b *testing.B, setup func(rt *baton.Runtime)) context.Context {
	rt, err := baton.NewRuntime()
	if err != nil {
		b.Fatal(err)
	}
	if setup != nil {
		setup(rt)
	}
	b.Cleanup(func() {
		_, _ = rt.Shutdown(30 * time.Second)
		_ = rt.Close()
	})
	return baton.NewStack(baton.WithRuntime(context.Background(), rt))
}

// cpuTime is the CPU time (user + system) this process has used, on every thread: it also
// counts the dispatcher delivering to subscribers, and it is less sensitive than wall time to
// other processes competing for the machine's two cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runManaged(b *testing.B, ctx context.Context) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for i := 0; i < b.N; i++ {
		if _, err := baton.Tool(ctx, "add", benchArgs, benchTool); err != nil {
			b.Fatal(err)
		}
	}
	// Delivery included: the timed loop ends when every event reached the subscribers.
	if _, err := baton.RuntimeOf(ctx).Flush(30 * time.Second); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkToolNothingRegistered(b *testing.B) {
	runManaged(b, benchRuntime(b, nil))
}

func BenchmarkToolOneSubscriberInclDelivery(b *testing.B) {
	var n atomic.Int64
	runManaged(b, benchRuntime(b, func(rt *baton.Runtime) {
		if err := rt.Register(baton.Subscriber("count", func(json.RawMessage) error { n.Add(1); return nil })); err != nil {
			b.Fatal(err)
		}
	}))
}

func BenchmarkToolFullChainInclDelivery(b *testing.B) {
	runManaged(b, benchRuntime(b, func(rt *baton.Runtime) {
		var n atomic.Int64
		mws := []baton.Middleware{
			baton.Subscriber("count", func(json.RawMessage) error { n.Add(1); return nil }),
			baton.ToolGuardrail("allow", func(baton.CallInfo, json.RawMessage) (baton.Decision, error) { return baton.Allow(), nil }),
			baton.ToolRequestIntercept("same", func(_ baton.CallInfo, in json.RawMessage) (json.RawMessage, error) { return in, nil }),
			baton.ToolExecutionIntercept("pass", func(_ *baton.CallContext, in json.RawMessage, next baton.Next) (json.RawMessage, error) {
				return next(in)
			}),
			baton.ToolSanitizeRequest("req", func(_ baton.CallInfo, p json.RawMessage) (json.RawMessage, error) { return p, nil }),
			baton.ToolSanitizeResponse("resp", func(_ baton.CallInfo, p json.RawMessage) (json.RawMessage, error) { return p, nil }),
			baton.MetadataInjector("env", func(baton.EventInfo) (map[string]any, error) { return map[string]any{"env": "bench"}, nil }),
		}
		for _, m := range mws {
			if err := rt.Register(m); err != nil {
				b.Fatal(err)
			}
		}
	}))
}

// The managed path without delivery: a subscriber is registered (so calls open scopes and
// emit events) but only on an unrelated scope, so nothing is delivered. Separates the cost
// of the call from the cost of delivering its events.
func BenchmarkToolObservedNoDelivery(b *testing.B) {
	ctx := benchRuntime(b, nil)
	_, other := baton.StartScope(baton.NewStack(ctx), "elsewhere")
	if err := baton.RuntimeOf(ctx).Register(baton.Subscriber("x", func(json.RawMessage) error { return nil }), baton.OnScope(other)); err != nil {
		b.Fatal(err)
	}
	runManaged(b, ctx)
}
