package baton

import "encoding/json"

// Call and event info reach every Go middleware call as a small flat JSON object of strings
// (and nulls) that Baton writes itself. encoding/json's reflection made decoding it most of a
// middleware call's cost, so the usual shape is scanned directly; anything else (escapes,
// other value types) falls back to encoding/json.

func callInfoOf(b []byte) CallInfo {
	var ci CallInfo
	decodeInfo(b, &ci, []infoField{
		{"kind", &ci.Kind}, {"name", &ci.Name}, {"tool_call_id", &ci.ToolCallID},
		{"model_name", &ci.ModelName}, {"parent_uuid", &ci.ParentUUID}, {"uuid", &ci.UUID},
	})
	return ci
}

func eventInfoOf(b []byte) EventInfo {
	var ei EventInfo
	decodeInfo(b, &ei, []infoField{
		{"kind", &ei.Kind}, {"scope_category", &ei.ScopeCategory}, {"uuid", &ei.UUID},
		{"parent_uuid", &ei.ParentUUID}, {"name", &ei.Name}, {"category", &ei.Category},
	})
	return ei
}

// infoField is where the string value of one key of an info object goes.
type infoField struct {
	key string
	dst *string
}

// decodeInfo fills dst (a *CallInfo or *EventInfo whose string fields are listed in fields)
// from b, scanning directly when b has the usual flat shape.
func decodeInfo(b []byte, dst any, fields []infoField) {
	ok := flatStrings(b, func(k, v string) {
		for _, f := range fields {
			if f.key == k {
				*f.dst = v
				return
			}
		}
	})
	if !ok {
		for _, f := range fields {
			*f.dst = ""
		}
		_ = json.Unmarshal(b, dst)
	}
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
