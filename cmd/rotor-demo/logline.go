package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor"
)

// record is one slog JSON log line of a child process.
type record struct {
	Level string
	Msg   string
	Attrs []attr // in order, without time, level and msg
}

type attr struct{ Key, Value string }

// get returns the value of key, or "".
func (r record) get(key string) string {
	for _, a := range r.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// set files one key of a log line: time is dropped (the demo prints its
// own), level and msg have their fields, the rest are attributes in order.
func (r *record) set(key, value string) {
	switch key {
	case "time":
	case "level":
		r.Level = value
	case "msg":
		r.Msg = value
	default:
		r.Attrs = append(r.Attrs, attr{key, value})
	}
}

// parseJSON reads a slog JSON line, keeping the attributes in order; a line
// that is not a JSON object is returned whole as the message.
func parseJSON(line string) record {
	d := json.NewDecoder(strings.NewReader(line))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return record{Msg: line}
	}
	var r record
	for d.More() {
		t, err := d.Token()
		key, ok := t.(string)
		var raw json.RawMessage
		if err != nil || !ok || d.Decode(&raw) != nil {
			return record{Msg: line}
		}
		value := string(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			value = s
		}
		r.set(key, value)
	}
	return r
}

// render is a record as the demo prints it: the message, then the
// attributes but the event name (for programs, not people), long hex values
// (serials, fingerprints) cut to 12 digits and times to the second, so a
// line fits a terminal.
func (r record) render() string {
	var b strings.Builder
	if r.Level != "" && r.Level != "INFO" {
		b.WriteString(r.Level + " ")
	}
	b.WriteString(r.Msg)
	for _, a := range r.Attrs {
		if a.Key != rotor.LogEvent {
			b.WriteString(" " + a.Key + "=" + shorten(a.Value))
		}
	}
	return b.String()
}

func shorten(v string) string {
	if rotor.IsLowerHex(v, 17, len(v)) {
		return v[:12] + "…"
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		t = t.Local()
		if y, m, d := t.Date(); y == time.Now().Year() && m == time.Now().Month() && d == time.Now().Day() {
			return t.Format(time.TimeOnly)
		}
		return t.Format(time.DateTime)
	}
	if strings.ContainsAny(v, " \"=") {
		return strconv.Quote(v)
	}
	return v
}
