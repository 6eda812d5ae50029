package brand

import (
	"strings"
	"testing"
)

func TestValidColor(t *testing.T) {
	for _, s := range []string{"#2f5bea", "#2F5BEA", "#abc", "#0a7", "#000000", "#FfFfFf"} {
		if !ValidColor(s) || CheckColor(s) != nil {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "#", "red", "RED", "transparent", "#12", "#1234", "#12345", "#1234567",
		"#12345678", "#ggg", "2f5bea", " #2f5bea", "#2f5bea ", "#2f5bea;", "red;}body{", "rgb(1,2,3)", "#２f5", "#\x00\x00\x00"} {
		if ValidColor(s) {
			t.Errorf("%q accepted", s)
		}
		if err := CheckColor(s); err == nil || !strings.Contains(err.Error(), "#rgb or #rrggbb") {
			t.Errorf("CheckColor(%q) = %v", s, err)
		}
	}
}

// FuzzValidColor: whatever is accepted is "#" and 3 or 6 hex digits, so
// it is inert in CSS and in an HTML attribute.
func FuzzValidColor(f *testing.F) {
	for _, s := range []string{"#2f5bea", "#abc", "red", "#12345678", "#2f5bea;", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidColor(s) {
			return
		}
		if s[0] != '#' || (len(s) != 4 && len(s) != 7) || strings.Trim(s[1:], "0123456789abcdefABCDEF") != "" {
			t.Fatalf("ValidColor(%q)", s)
		}
	})
}
