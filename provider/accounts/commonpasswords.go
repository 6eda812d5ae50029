package accounts

import (
	_ "embed"
	"strings"
	"sync"
)

// commonPasswordsFile is the blocklist of the 10,000 most common passwords
// (NIST SP 800-63B 3.1.1.2: reject passwords from lists of commonly used or
// compromised values). Lines starting with "#" are comments.
//
// It is the first 10,000 entries, in rank order, of data/passwords.txt in the
// Go module github.com/trustelem/zxcvbn v1.0.1 (MIT), lowercased and
// deduplicated; zxcvbn is not a dependency, only this file is. The raw
// data/passwords.txt is used rather than the compiled frequency/lists.go,
// because the latter drops passwords that rank higher in zxcvbn's other
// dictionaries (names, English words), such as "michael". To regenerate:
//
//	cd /tmp && mkdir zx && cd zx && go mod init x && go get github.com/trustelem/zxcvbn@v1.0.1
//	Z=$(go env GOMODCACHE)/github.com/trustelem/zxcvbn@v1.0.1
//	# keep the "#" header lines of commonpasswords.txt, then append:
//	head -n 10000 $Z/data/passwords.txt | awk '{print tolower($1)}' | awk '!seen[$0]++'
//
//go:embed commonpasswords.txt
var commonPasswordsFile string

// commonPasswords is the set of lowercased entries of commonPasswordsFile,
// built on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 10000)
	for line := range strings.Lines(commonPasswordsFile) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[strings.ToLower(line)] = struct{}{}
	}
	return m
})

// isCommonPassword reports whether pw, compared case-insensitively as a
// whole (no trimming), is one of the bundled common passwords. It does not
// allocate when pw has no upper-case letters.
func isCommonPassword(pw string) bool {
	_, ok := commonPasswords()[strings.ToLower(pw)]
	return ok
}
