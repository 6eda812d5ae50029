package config

import (
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/ratelimit"
)

// FuzzDurationSetting: a duration setting either loads as a positive
// duration that formats back to itself, or fails naming the setting.
func FuzzDurationSetting(f *testing.F) {
	for _, s := range []string{"1h", " 15m ", "90s", "720h", "1h30m", "1.5h", "0", "0s", "-5m", "abc", "1 hour", "5",
		"9223372036854775807ns", "9223372036854775808ns", "2562047h47m16.854775807s", "1µs", "1us", ".5s", "+1m", "\x00"} {
		f.Add(s)
	}
	const env = "LATCHKEY_ACCESS_TOKEN_TTL"
	f.Fuzz(func(t *testing.T, v string) {
		var d time.Duration
		if err := parseInto(&d, v); err == nil {
			var back time.Duration
			if err := parseInto(&back, d.String()); err != nil || back != d {
				t.Fatalf("%q parsed as %v, which re-parses as %v, %v", v, d, back, err)
			}
		}
		c, err := Load(nil, func(k string) string {
			if k == env {
				return v
			}
			return ""
		})
		if err != nil {
			if !strings.HasPrefix(err.Error(), env+": ") {
				t.Fatalf("%q: error %q does not start with the setting's name", v, err)
			}
			return
		}
		if c.AccessTokenTTL <= 0 {
			t.Fatalf("%q loaded as %v", v, c.AccessTokenTTL)
		}
		if strings.TrimSpace(v) != "" && parseInto(&d, v) != nil {
			t.Fatalf("%q loaded although it does not parse", v)
		}
	})
}

// FuzzRateSetting: a rate-limit setting that loads is one the limiter
// accepts; one that does not fails naming the setting.
func FuzzRateSetting(f *testing.F) {
	for _, s := range []string{"30/1m", "off", "0", "10/m", "lots", "0/1m", "1/0s", " 5 / 1h ", "1/1ns", "2/1ns"} {
		f.Add(s)
	}
	const env = "LATCHKEY_RATE_LOGIN_IP"
	f.Fuzz(func(t *testing.T, v string) {
		c, err := Load(nil, func(k string) string {
			if k == env {
				return v
			}
			return ""
		})
		if err != nil {
			if !strings.HasPrefix(err.Error(), env+": ") {
				t.Fatalf("%q: error %q does not start with the setting's name", v, err)
			}
			return
		}
		if _, err := ratelimit.ParseLimit(c.RateLoginIP); err != nil {
			t.Fatalf("%q loaded, but the limiter refuses %q: %v", v, c.RateLoginIP, err)
		}
	})
}
