package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// JSON pointer edits used by the scenario behaviours (set, remove, set_chunk, ...), on values
// decoded with UseNumber: map[string]any, []any, json.Number, string, bool, nil.

func tokens(ptr string) ([]string, error) {
	if ptr == "" {
		return nil, nil
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, fmt.Errorf("invalid JSON pointer '%s': must be empty or start with '/'", ptr)
	}
	parts := strings.Split(ptr[1:], "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// setPtr sets value at ptr in doc (creating missing objects) and returns the new doc.
func setPtr(doc any, ptr string, value any) (any, error) {
	toks, err := tokens(ptr)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return value, nil
	}
	return setIn(doc, toks, ptr, value)
}

func setIn(cur any, toks []string, ptr string, value any) (any, error) {
	t := toks[0]
	last := len(toks) == 1
	switch c := cur.(type) {
	case map[string]any:
		if last {
			c[t] = value
			return c, nil
		}
		child, ok := c[t]
		if !ok {
			child = map[string]any{}
		}
		v, err := setIn(child, toks[1:], ptr, value)
		if err != nil {
			return nil, err
		}
		c[t] = v
		return c, nil
	case []any:
		if last && t == "-" {
			return append(c, value), nil
		}
		i, err := strconv.Atoi(t)
		if err != nil {
			return nil, fmt.Errorf("pointer '%s': '%s' is not an array index", ptr, t)
		}
		if i < 0 || i >= len(c) {
			return nil, fmt.Errorf("pointer '%s': index %d out of range", ptr, i)
		}
		if last {
			c[i] = value
			return c, nil
		}
		v, err := setIn(c[i], toks[1:], ptr, value)
		if err != nil {
			return nil, err
		}
		c[i] = v
		return c, nil
	case nil:
		return setIn(map[string]any{}, toks, ptr, value)
	default:
		b, _ := json.Marshal(c)
		if last {
			return nil, fmt.Errorf("pointer '%s': cannot set a field of %s", ptr, b)
		}
		return nil, fmt.Errorf("pointer '%s': cannot descend into %s", ptr, b)
	}
}

// removePtr removes the value at ptr (absent is fine) and returns the new doc.
func removePtr(doc any, ptr string) (any, error) {
	toks, err := tokens(ptr)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, nil
	}
	cur := doc
	for _, t := range toks[:len(toks)-1] {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[t]
			if !ok {
				return doc, nil
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				return doc, nil
			}
			cur = c[i]
		default:
			return doc, nil
		}
	}
	last := toks[len(toks)-1]
	switch c := cur.(type) {
	case map[string]any:
		delete(c, last)
	case []any:
		// Arrays are edited in place through their parent; rebuild the parent's slice.
		if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(c) {
			trimmed := append(append([]any{}, c[:i]...), c[i+1:]...)
			parentPtr := "/" + strings.Join(escape(toks[:len(toks)-1]), "/")
			if len(toks) == 1 {
				return trimmed, nil
			}
			return setPtr(doc, parentPtr, trimmed)
		}
	}
	return doc, nil
}

func escape(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
	}
	return out
}

// setAll applies every {ptr: value} of edits (an object).
func setAll(doc any, edits any) (any, error) {
	m, ok := edits.(map[string]any)
	if !ok {
		b, _ := json.Marshal(edits)
		return nil, fmt.Errorf("expected an object of pointer edits, got %s", b)
	}
	// serde_json's Map iterates in key order; do the same.
	for _, k := range sortedKeys(m) {
		var err error
		doc, err = setPtr(doc, k, deepCopy(m[k]))
		if err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, vv := range x {
			m[k] = deepCopy(vv)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, vv := range x {
			a[i] = deepCopy(vv)
		}
		return a
	default:
		return v
	}
}
