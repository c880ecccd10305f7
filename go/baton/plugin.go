package baton

/*
#include "glue.h"
*/
import "C"

import "encoding/json"

// Diagnostic is one finding about a plugins document.
type Diagnostic struct {
	Level     string `json:"level"` // "warning" or "error"
	Code      string `json:"code"`
	Component string `json:"component,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
}

// PluginRegistration is one registration a component installed.
type PluginRegistration struct {
	Kind Family `json:"kind"`
	Name string `json:"name"`
}

// InstalledComponent is what one component installed.
type InstalledComponent struct {
	Kind          string               `json:"kind"`
	Registrations []PluginRegistration `json:"registrations"`
}

// PluginReport is the outcome of PluginInitialize.
type PluginReport struct {
	Diagnostics []Diagnostic         `json:"diagnostics"`
	Components  []InstalledComponent `json:"components"`
}

// PluginValidate checks a plugins document (the plugins.toml format as a JSON-encodable value
// or json.RawMessage); it installs nothing.
func (r *Runtime) PluginValidate(document any) ([]Diagnostic, error) {
	b, err := marshalArg("document", document)
	if err != nil {
		return nil, err
	}
	var out, msg *C.char
	if err := check(C.go_plugin_validate(r.id, cjson(b), &out, &msg), msg); err != nil {
		return nil, err
	}
	d := []Diagnostic{}
	err = json.Unmarshal(ctakeJSON(out), &d)
	return d, err
}

// PluginInitialize validates a plugins document, replaces the active configuration with it
// (rolling back on failure) and reports what was installed.
func (r *Runtime) PluginInitialize(document any) (PluginReport, error) {
	rep := PluginReport{Diagnostics: []Diagnostic{}, Components: []InstalledComponent{}}
	b, err := marshalArg("document", document)
	if err != nil {
		return rep, err
	}
	var out, msg *C.char
	if err := check(C.go_plugin_initialize(r.id, cjson(b), &out, &msg), msg); err != nil {
		return rep, err
	}
	err = json.Unmarshal(ctakeJSON(out), &rep)
	return rep, err
}

// PluginClear removes everything the active plugin configuration installed.
func (r *Runtime) PluginClear() error {
	var msg *C.char
	return check(C.go_plugin_clear(r.id, &msg), msg)
}
