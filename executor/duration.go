package executor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// mesosUnits are stout's duration units, largest first (the order FormatDuration tries them).
var mesosUnits = []struct {
	name string
	d    time.Duration
}{
	{"weeks", 7 * 24 * time.Hour},
	{"days", 24 * time.Hour},
	{"hrs", time.Hour},
	{"mins", time.Minute},
	{"secs", time.Second},
	{"ms", time.Millisecond},
	{"us", time.Microsecond},
	{"ns", time.Nanosecond},
}

// ParseDuration parses a duration in Mesos' (stout's) format: a decimal number, fractions
// allowed, followed directly by one of ns, us, ms, secs, mins, hrs, days, weeks ("5secs",
// "1.5days"). Go's time.ParseDuration cannot read these strings.
func ParseDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		if i == 0 || s == "" {
			return 0, fmt.Errorf("duration %q: want a number followed by a unit (ns, us, ms, secs, mins, hrs, days, weeks)", s)
		}
		return 0, fmt.Errorf("duration %q: missing unit (ns, us, ms, secs, mins, hrs, days, weeks)", s)
	}
	num, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: bad number %q", s, s[:i])
	}
	unit := s[i:]
	for _, u := range mesosUnits {
		if u.name == unit {
			v := num * float64(u.d)
			if v > math.MaxInt64 {
				return 0, fmt.Errorf("duration %q: out of range", s)
			}
			return time.Duration(v), nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit %q (want ns, us, ms, secs, mins, hrs, days, weeks)", s, unit)
}

// FormatDuration writes d as the Mesos agent does: the largest unit that gives a whole number
// ("2secs", "15mins", "1500ms").
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0ns"
	}
	for _, u := range mesosUnits {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
