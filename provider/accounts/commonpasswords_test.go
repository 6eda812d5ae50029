package accounts

import (
	"strings"
	"testing"
)

func TestCommonPasswordList(t *testing.T) {
	const want = 10000
	if got := len(commonPasswords()); got != want {
		t.Fatalf("list has %d entries, want %d", got, want)
	}
	if !strings.HasPrefix(commonPasswordsFile, "#") ||
		!strings.Contains(commonPasswordsFile, "github.com/trustelem/zxcvbn v1.0.1") ||
		!strings.Contains(commonPasswordsFile, "MIT") {
		t.Error("commonpasswords.txt lacks its source/version/license header")
	}
	for pw := range commonPasswords() {
		if pw == "" || pw != strings.ToLower(pw) || strings.TrimSpace(pw) != pw {
			t.Errorf("bad entry %q", pw)
		}
	}

	tests := []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"123456", true},
		{"qwerty", true},
		{"PassWord", true},
		{"QWERTY", true},
		{"iloveyou", true},
		{"michael", true},
		{"", false},
		{" password", false}, // whole-password match, nothing trimmed
		{"password ", false},
		{"# The 10,000 most common passwords, most common first, one per line.", false},
		{"vK7#q9Lz!mW2@xR4pT8&", false},
		{"correct horse battery staple", false},
	}
	for _, tt := range tests {
		if got := isCommonPassword(tt.pw); got != tt.want {
			t.Errorf("isCommonPassword(%q) = %v, want %v", tt.pw, got, tt.want)
		}
	}
}

func TestCommonPasswordNoAllocLowercase(t *testing.T) {
	isCommonPassword("warm-up") // build the set outside the measurement
	if n := testing.AllocsPerRun(100, func() { isCommonPassword("letmein") }); n != 0 {
		t.Errorf("isCommonPassword(lowercase) allocates %v times, want 0", n)
	}
}

func BenchmarkIsCommonPassword(b *testing.B) {
	isCommonPassword("warm-up")
	for _, bc := range []struct{ name, pw string }{
		{"lower-hit", "letmein"},
		{"lower-miss", "vk7q9lzmw2xr4pt8"},
		{"mixed-case", "LetMeIn"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				isCommonPassword(bc.pw)
			}
		})
	}
}
