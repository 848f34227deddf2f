package main

import (
	"reflect"
	"testing"
)

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name string
		line string
		want record
	}{
		{"ok/attributes-in-order",
			`{"time":"2026-11-27T18:34:28Z","level":"INFO","msg":"webapp stopped","role":"webapp","event":"final","requests":149,"ok":true}`,
			record{Level: "INFO", Msg: "webapp stopped", Attrs: []attr{{"role", "webapp"}, {"event", "final"}, {"requests", "149"}, {"ok", "true"}}}},
		{"fail/not-json", `listen tcp: address in use`, record{Msg: `listen tcp: address in use`}},
		{"fail/json-array", `[1,2]`, record{Msg: `[1,2]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseJSON(tc.line); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseJSON(%q) = %#v, want %#v", tc.line, got, tc.want)
			}
		})
	}
}
