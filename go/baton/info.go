package baton

import "encoding/json"

// Call and event info reach every Go middleware call as a small flat JSON object of strings
// (and nulls) that Baton writes itself. encoding/json's reflection made decoding it most of a
// middleware call's cost, so the usual shape is scanned directly; anything else (escapes,
// other value types) falls back to encoding/json.

func callInfoOf(b []byte) CallInfo {
	var ci CallInfo
	ok := flatStrings(b, func(k, v string) {
		switch k {
		case "kind":
			ci.Kind = v
		case "name":
			ci.Name = v
		case "tool_call_id":
			ci.ToolCallID = v
		case "model_name":
			ci.ModelName = v
		case "parent_uuid":
			ci.ParentUUID = v
		case "uuid":
			ci.UUID = v
		}
	})
	if !ok {
		ci = CallInfo{}
		_ = json.Unmarshal(b, &ci)
	}
	return ci
}

func eventInfoOf(b []byte) EventInfo {
	var ei EventInfo
	ok := flatStrings(b, func(k, v string) {
		switch k {
		case "kind":
			ei.Kind = v
		case "scope_category":
			ei.ScopeCategory = v
		case "uuid":
			ei.UUID = v
		case "parent_uuid":
			ei.ParentUUID = v
		case "name":
			ei.Name = v
		case "category":
			ei.Category = v
		}
	})
	if !ok {
		ei = EventInfo{}
		_ = json.Unmarshal(b, &ei)
	}
	return ei
}

// flatStrings calls set for each key whose value is a string without escapes, skipping null
// values; it reports false when b is not such a flat object.
func flatStrings(b []byte, set func(k, v string)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		k, j, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			i += 4
		} else {
			v, j, ok := plainString(b, i)
			if !ok {
				return false
			}
			set(k, v)
			i = j
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		return i < len(b) && b[i] == '}' && skipSpace(b, i+1) == len(b)
	}
}

// plainString reads a JSON string starting at b[i] that has no escapes or control bytes.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
