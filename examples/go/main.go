// A Go agent turn through Baton: a scope, a guarded and retried tool call, a streamed LLM
// call, and a subscriber that prints every event. Run it with `go run .` in examples/go
// (after `cargo build --release -p baton-ffi`).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/baton-runtime/baton/go/baton"
)

func main() {
	rt := baton.Default()
	must(rt.Register(baton.Subscriber("printer", func(event json.RawMessage) error {
		var e struct {
			Kind          string `json:"kind"`
			ScopeCategory string `json:"scope_category"`
			Name          string `json:"name"`
		}
		_ = json.Unmarshal(event, &e)
		fmt.Printf("event  %-5s %-5s %s\n", e.Kind, e.ScopeCategory, e.Name)
		return nil
	})))
	// Block a dangerous tool, and retry flaky ones once.
	must(rt.Register(baton.ToolGuardrail("no-rm", func(call baton.CallInfo, _ json.RawMessage) (baton.Decision, error) {
		if call.Name == "rm" {
			return baton.Reject("rm is not allowed"), nil
		}
		return baton.Allow(), nil
	})))
	must(rt.Register(baton.ToolExecutionIntercept("retry-once", func(_ *baton.CallContext, in json.RawMessage, next baton.Next) (json.RawMessage, error) {
		out, err := next(in)
		if err != nil {
			out, err = next(in)
		}
		return out, err
	})))

	ctx, turn := baton.StartScope(context.Background(), "turn", baton.Category("agent"))

	attempts := 0
	weather, err := baton.Tool(ctx, "weather", map[string]string{"city": "Paris"},
		func(ctx context.Context, args json.RawMessage) (any, error) {
			attempts++
			if attempts == 1 {
				return nil, errors.New("timeout talking to the weather service")
			}
			return map[string]any{"forecast": "sunny", "celsius": 21}, nil
		}, baton.ToolCallID("call-1"))
	must(err)
	fmt.Printf("weather: %s after %d attempts\n", weather, attempts)

	_, err = baton.Tool(ctx, "rm", map[string]string{"path": "/"}, func(context.Context, json.RawMessage) (any, error) {
		return nil, nil
	})
	fmt.Println("rm rejected:", errors.Is(err, baton.ErrGuardrailRejected))

	words := []string{"It", "is", "sunny."}
	stream, err := baton.LLMStream(ctx, "chat", map[string]any{"headers": map[string]string{}, "content": map[string]any{}},
		func(context.Context, json.RawMessage) (baton.ChunkSource, error) {
			i := 0
			return func() (json.RawMessage, error) {
				if i == len(words) {
					return nil, io.EOF
				}
				i++
				return json.Marshal(map[string]string{"delta": words[i-1]})
			}, nil
		}, baton.ModelName("demo-model"))
	must(err)
	for {
		chunk, err := stream.Next()
		if err == io.EOF {
			break
		}
		must(err)
		fmt.Printf("chunk: %s\n", chunk)
	}
	must(stream.Close())
	must(turn.End(baton.Output("done")))
	// Deliver everything still queued before the process exits.
	_, err = baton.Shutdown(5 * time.Second)
	must(err)
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
