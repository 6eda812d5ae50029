package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/config"
)

// The README documents every setting and every command; this keeps it
// honest when one is added.
func TestREADMEDocumentsEverySettingAndCommand(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range config.Settings() {
		if !strings.Contains(readme, "`"+s.Env+"`") || !strings.Contains(readme, "`--"+s.Flag+"`") {
			t.Errorf("README.md does not document %s / --%s", s.Env, s.Flag)
		}
	}
	root := (&env{}).rootCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		subs := c.Commands()
		if len(subs) == 0 {
			if !strings.Contains(readme, "latchkey "+c.Name()) {
				t.Errorf("README.md does not document `latchkey %s`", c.Name())
			}
		}
		for _, sc := range subs {
			re := regexp.MustCompile(`latchkey ` + c.Name() + ` (\S*\|)?` + sc.Name() + `\b`)
			if !re.MatchString(readme) {
				t.Errorf("README.md does not document `latchkey %s %s`", c.Name(), sc.Name())
			}
		}
	}
}

// The settings table under "<!-- generated: latchkey settings --markdown -->"
// is exactly what that command prints: regenerate it, never hand-edit it.
func TestREADMESettingsTableIsGenerated(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- generated: latchkey settings --markdown -->\n"
	_, after, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("README.md has no %q line", strings.TrimSpace(marker))
	}
	var table []string
	for _, line := range strings.SplitAfter(after, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		table = append(table, line)
	}
	var out strings.Builder
	if err := run(t.Context(), []string{"settings", "--markdown"}, func(string) string { return "" }, strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(table, ""); got != out.String() {
		t.Errorf("README.md's settings table differs from `latchkey settings --markdown`; regenerate it:\n"+
			"go run ./cmd/latchkey settings --markdown\n--- README\n%s--- generated\n%s", got, out.String())
	}
}
