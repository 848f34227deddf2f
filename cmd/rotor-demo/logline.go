package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// record is one log line of a child process: rotor-ca and rotor-agent log
// slog text, the demo's service roles slog JSON.
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

// parseText reads a slog text line: key=value pairs, values quoted with Go
// syntax when they hold spaces or quotes. A line that is not of that form
// (a panic, a message from a library) is returned whole as the message.
func parseText(line string) record {
	var r record
	rest := strings.TrimSpace(line)
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return record{Msg: line}
		}
		var value string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return record{Msg: line}
			}
			value, _ = strconv.Unquote(q)
			after = after[len(q):]
		} else {
			value, after, _ = strings.Cut(after, " ")
			after = " " + after
		}
		if after != "" && after[0] != ' ' {
			return record{Msg: line}
		}
		rest = strings.TrimLeft(after, " ")
		r.set(key, value)
	}
	return r
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
// attributes, long hex values (serials, fingerprints) cut to 12 digits and
// times to the second, so a line fits a terminal.
func (r record) render() string {
	var b strings.Builder
	if r.Level != "" && r.Level != "INFO" {
		b.WriteString(r.Level + " ")
	}
	b.WriteString(r.Msg)
	for _, a := range r.Attrs {
		b.WriteString(" " + a.Key + "=" + shorten(a.Value))
	}
	return b.String()
}

func shorten(v string) string {
	if len(v) > 16 && isHex(v) {
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

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
