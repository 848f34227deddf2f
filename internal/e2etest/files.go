package e2etest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rotor-dev/rotor"
)

// ReplaceFile writes data to path by rename, as operators should, so a
// process watching path never reads half of it.
func ReplaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Snapshot is the names and contents of a directory's files, to compare
// before and after something that must not change them.
func Snapshot(t testing.TB, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		b.WriteString(e.Name() + "\n" + string(data))
	}
	return b.String()
}

// JSONLog collects a slog JSON handler's output in memory, safe for
// concurrent writes, and reads it back by event and level.
type JSONLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *JSONLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything logged.
func (l *JSONLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines are the log lines that are JSON objects, oldest first.
func (l *JSONLog) Lines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			out = append(out, line)
		}
	}
	return out
}

// Count is how many lines have the given level ("ERROR").
func (l *JSONLog) Count(level string) int {
	n := 0
	for _, line := range l.Lines() {
		if line[slogLevel] == level {
			n++
		}
	}
	return n
}

// Events are the lines whose rotor.LogEvent attribute is event.
func (l *JSONLog) Events(event string) []map[string]any {
	var out []map[string]any
	for _, line := range l.Lines() {
		if line[rotor.LogEvent] == event {
			out = append(out, line)
		}
	}
	return out
}

const slogLevel = "level"
