package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Age is a duration flag that also takes whole days, "90d", as retention
// periods are said; anything else is read by time.ParseDuration ("36h").
type Age time.Duration

// Set implements flag.Value.
func (a *Age) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return fmt.Errorf("%q: want whole days (90d) or a duration (36h)", s)
		}
		*a = Age(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: want whole days (90d) or a duration (36h)", s)
	}
	*a = Age(d)
	return nil
}

// String implements flag.Value: whole days as days.
func (a *Age) String() string {
	d := time.Duration(*a)
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// Get implements flag.Getter.
func (a *Age) Get() any { return time.Duration(*a) }
