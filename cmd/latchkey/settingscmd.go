package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/internal/config"
)

// settingsCmd lists every setting; --markdown prints the table the README
// carries (regenerate it with `latchkey settings --markdown`).
func (e *env) settingsCmd() *cobra.Command {
	var markdown, asJSON bool
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "List every setting with its environment variable, flag and default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss := config.Settings()
			switch {
			case asJSON:
				return printJSON(e.stdout, ss)
			case markdown:
				fmt.Fprintln(e.stdout, "| Environment | Flag | YAML | Default | Meaning |\n|---|---|---|---|---|")
				for _, s := range ss {
					d := "—"
					if s.Default != "" {
						d = "`" + strings.ReplaceAll(s.Default, "<data_dir>", "DATA_DIR") + "`"
					}
					fmt.Fprintf(e.stdout, "| `%s` | `--%s` | `%s` | %s | %s |\n", s.Env, s.Flag, s.Name, d,
						strings.ReplaceAll(strings.ReplaceAll(s.Help, "|", `\|`), "<data_dir>", "DATA_DIR"))
				}
				return nil
			}
			t := newTable(e.stdout, "ENV", "FLAG", "DEFAULT")
			for _, s := range ss {
				t.row(s.Env, "--"+s.Flag, s.Default)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the README's Markdown table")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
