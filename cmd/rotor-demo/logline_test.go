package main

import (
	"reflect"
	"testing"
)

func TestParseText(t *testing.T) {
	tests := []struct {
		name string
		line string
		want record
	}{
		{"ok/quoted-message-and-values",
			`time=2026-11-27T18:34:28.462Z level=INFO msg="Issuing certificate for webapp.default" serial=4b2e names="[a b]"`,
			record{Level: "INFO", Msg: "Issuing certificate for webapp.default", Attrs: []attr{{"serial", "4b2e"}, {"names", "[a b]"}}}},
		{"ok/escaped-quote", `level=WARN msg="say \"hi\"" n=1`,
			record{Level: "WARN", Msg: `say "hi"`, Attrs: []attr{{"n", "1"}}}},
		{"ok/bare-message", `level=INFO msg=authenticators order="[mtls token]"`,
			record{Level: "INFO", Msg: "authenticators", Attrs: []attr{{"order", "[mtls token]"}}}},
		{"fail/not-slog-text", `panic: runtime error: index out of range`,
			record{Msg: `panic: runtime error: index out of range`}},
		{"fail/unterminated-quote", `level=INFO msg="half`, record{Msg: `level=INFO msg="half`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseText(tc.line); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseText(%q) = %#v, want %#v", tc.line, got, tc.want)
			}
		})
	}
}

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
