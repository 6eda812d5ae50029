package main

import (
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
