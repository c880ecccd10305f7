package baton

import (
	"encoding/json"
	"testing"
)

// The direct scan must decode exactly what encoding/json decodes, for every shape.
func TestInfoDecodingMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{"kind":"tool","name":"search","tool_call_id":"c1","model_name":null,"parent_uuid":"p","uuid":null}`,
		`{ "kind" : "llm" , "name" : "chat", "model_name": "gpt" }`,
		`{"kind":"tool","name":"say \"hi\" \u00e9","uuid":"u"}`,
		`{"kind":"tool","name":"naïve 東京"}`,
		`{}`,
		`{"kind":"tool","extra":{"nested":true},"name":"x"}`,
		`{"kind":"tool","name":1}`,
		`{"kind":"scope","scope_category":"start","uuid":"u","parent_uuid":null,"name":"n","category":"tool"}`,
		`not json`,
		`{"kind":"tool"`,
		`{"kind":"tool"} trailing`,
	}
	for _, in := range inputs {
		var wantC CallInfo
		_ = json.Unmarshal([]byte(in), &wantC)
		if got := callInfoOf([]byte(in)); got != wantC {
			t.Errorf("call info of %s: got %+v, want %+v", in, got, wantC)
		}
		var wantE EventInfo
		_ = json.Unmarshal([]byte(in), &wantE)
		if got := eventInfoOf([]byte(in)); got != wantE {
			t.Errorf("event info of %s: got %+v, want %+v", in, got, wantE)
		}
	}
}
