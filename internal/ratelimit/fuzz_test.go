package ratelimit

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseLimit: a parsed limit is off or a positive count over a
// positive period, and formats (String) to a text that parses back to the
// same limit.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"10/1m", "5/15m", "100/1h", "10/m", "3/h", "0", "off", "OFF", " 7 / 90s ", "1/1.5h",
		"1/1ns", "2/1ns", "1/9223372036854775807ns", "9223372036854775807/1h", "0/1m", "-1/1m", "10/-1m",
		"10/0s", "10", "10/", "/1m", "10/1m/2", "1e3/1m", "10/µs", "10/+1m", "10/.5m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ratelimit: ") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if l.Unlimited() {
			if l != (Limit{}) {
				t.Fatalf("ParseLimit(%q) = %+v: unlimited with a period", s, l)
			}
		} else if l.Count <= 0 || l.Per <= 0 || l.Per/time.Duration(l.Count) <= 0 {
			t.Fatalf("ParseLimit(%q) = %+v", s, l)
		}
		back, err := ParseLimit(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseLimit(%q) = %+v, String %q, parsed again %+v, %v", s, l, l.String(), back, err)
		}
	})
}
