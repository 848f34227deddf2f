package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSummary checks the verdict: ok only when every request succeeded,
// at least one was made, both services reported and nothing died.
func TestSummary(t *testing.T) {
	tests := []struct {
		name     string
		requests int64
		failed   int64
		final    []string
		problem  string
		want     error
		wantLine string
	}{
		{"ok/all-succeeded", 450, 0, services, "", nil, "result=ok"},
		{"fail/one-request-failed", 450, 1, services, "", errFailed, "result=fail"},
		{"fail/no-request", 0, 0, services, "", errFailed, "result=fail"},
		{"fail/api-did-not-report", 450, 0, []string{"webapp"}, "", errFailed, "result=fail"},
		{"fail/a-process-died", 450, 0, services, "agent/api exited unexpectedly with code 1", errFailed, "result=fail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d := &demo{cfg: demoConfig{Duration: 45 * time.Second, CertTTL: 30 * time.Second}, p: &printer{w: &out},
				t: newTally(), ran: 45 * time.Second}
			d.t.requests, d.t.failed = tc.requests, tc.failed
			for _, s := range tc.final {
				d.t.final[s] = true
			}
			if tc.problem != "" {
				d.problem("%s", tc.problem)
			}
			if err := d.summary(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("summary() = %v, want %v", err, tc.want)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, tc.wantLine+" ") {
				t.Errorf("last line %q, want it to start with %s", last, tc.wantLine)
			}
		})
	}
}
