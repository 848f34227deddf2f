package cli

import (
	"io"
	"log/slog"
)

// NewLogger is the slog logger every command writes to w: level debug,
// info, warn or error; format text or json. In JSON, durations are strings
// such as "24h0m0s", as people and log queries read them, not nanoseconds.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, Usagef("--log-format %q: want text or json", format)
}

// LogFlags are the logging settings every command takes.
type LogFlags struct{ Level, Format string }

// Register adds --log-level and --log-format.
func (l *LogFlags) Register(f *FlagSet) {
	f.StringVar(&l.Level, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&l.Format, "log-format", "text", "log format: text or json")
}

// Logger is NewLogger with these settings.
func (l LogFlags) Logger(w io.Writer) (*slog.Logger, error) { return NewLogger(w, l.Level, l.Format) }
