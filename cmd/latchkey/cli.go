package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/migrations"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

// env is what every command runs with: the process's environment and
// streams, injected so that tests run commands in-process.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is main without the process: it parses args, runs one command and
// returns its error.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

func (e *env) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "latchkey",
		Short: "Latchkey, an OpenID Connect provider",
		Long: "Latchkey is an OpenID Connect provider in one binary.\n\n" +
			"Every setting can be given as a flag, as a LATCHKEY_* environment variable\n" +
			"or in a YAML file (--config); flags win over the environment, which wins\n" +
			"over the file. `latchkey serve --help` and `latchkey settings` list them all.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	config.RegisterFlags(root.PersistentFlags())
	serve := e.serveCmd()
	root.AddCommand(serve, e.migrateCmd(), e.clientsCmd(), e.usersCmd(), e.groupsCmd(), e.rolesCmd(), e.keysCmd(), e.secretsCmd(), e.settingsCmd(), e.versionCmd())
	// Every setting is accepted by every command (a CLI command reads the
	// same configuration as the server), but only serve's help lists them
	// all; the others list their own flags and the few settings a command
	// line needs. `latchkey settings` lists everything.
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		if cmd != serve {
			root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
				f.Hidden = !slices.Contains(commandLineSettings(), f.Name)
			})
		}
		defaultHelp(cmd, args)
	})
	return root
}

// commandLineSettings are the settings the help of every command lists.
func commandLineSettings() []string {
	return []string{"config", "database-url", "data-dir", "secret", "log-level", "log-format"}
}

// load reads the configuration for cmd and makes sure the data directory
// and secret exist. Warnings go to the logger it returns.
func (e *env) load(cmd *cobra.Command) (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load(cmd.Flags(), e.getenv)
	if err != nil {
		return nil, nil, err
	}
	log := cfg.Logger(e.stderr)
	if err := cfg.EnsureSecret(); err != nil {
		return nil, nil, err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	return cfg, log, nil
}

// openStore connects to the configured database with opts and, unless
// disabled, brings its schema up to date. It is the one place that sees
// the concrete store (its DB and Dialect are for migrations); its callers
// hand on the storage.Store.
func openStore(ctx context.Context, cfg *config.Config, opts ...sqlstore.Option) (*sqlstore.SQLStore, error) {
	opts = append(opts, sqlstore.WithMaxOpenConns(cfg.DBMaxOpenConns))
	store, err := sqlstore.Open(ctx, cfg.DatabaseURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("LATCHKEY_DATABASE_URL: %w", err)
	}
	if cfg.MigrateOnStart {
		if err := migrations.Up(ctx, store.DB(), store.Dialect()); err != nil {
			_ = store.Close()
			return nil, err
		}
	}
	return store, nil
}

// withStore runs fn with the configured store open.
func (e *env) withStore(cmd *cobra.Command, fn func(ctx context.Context, cfg *config.Config, log *slog.Logger, store storage.Store) error) error {
	cfg, log, err := e.load(cmd)
	if err != nil {
		return err
	}
	// Changes made from the command line are audited as the operator's.
	ctx := accounts.WithActor(cmd.Context(), accounts.Actor{Type: storage.ActorSystem, ID: "cli"})
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(ctx, cfg, log, store)
}

// groupCmd is a command that only holds subcommands. Cobra prints help and
// succeeds for an unknown subcommand of such a command; an operator's typo
// in a script should fail instead.
func groupCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return fmt.Errorf("%s needs a subcommand:\n%s", cmd.CommandPath(), cmd.UsageString())
		},
	}
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := struct {
				Version   string `json:"version"`
				GoVersion string `json:"go_version"`
				Commit    string `json:"commit,omitempty"`
			}{Version: version, GoVersion: runtime.Version()}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						v.Commit = s.Value
					}
				}
			}
			if asJSON {
				return printJSON(e.stdout, v)
			}
			fmt.Fprintf(e.stdout, "latchkey %s (%s", v.Version, v.GoVersion)
			if v.Commit != "" {
				fmt.Fprintf(e.stdout, ", commit %.12s", v.Commit)
			}
			fmt.Fprintln(e.stdout, ")")
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// migrationStatus opens the database, applies the migrations when up is
// set, and lists them.
func (e *env) migrationStatus(cmd *cobra.Command, up bool) ([]migrations.MigrationStatus, error) {
	cfg, _, err := e.load(cmd)
	if err != nil {
		return nil, err
	}
	cfg.MigrateOnStart = up
	store, err := openStore(cmd.Context(), cfg)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return migrations.Status(cmd.Context(), store.DB(), store.Dialect())
}

func (e *env) migrateCmd() *cobra.Command {
	cmd := groupCmd("migrate", "Apply or inspect database migrations")
	var asJSON bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := e.migrationStatus(cmd, true)
			if err != nil {
				return err
			}
			var current int64
			for _, m := range st {
				if m.Applied {
					current = m.Version
				}
			}
			if asJSON {
				return printJSON(e.stdout, map[string]any{"version": current})
			}
			fmt.Fprintf(e.stdout, "database at version %d\n", current)
			return nil
		},
	}
	up.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var statusJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := e.migrationStatus(cmd, false)
			if err != nil {
				return err
			}
			if statusJSON {
				type row struct {
					Version   int64  `json:"version"`
					Name      string `json:"name"`
					Applied   bool   `json:"applied"`
					AppliedAt string `json:"applied_at,omitempty"`
				}
				rows := make([]row, 0, len(st))
				for _, m := range st {
					r := row{Version: m.Version, Name: m.Name, Applied: m.Applied}
					if m.Applied {
						r.AppliedAt = m.AppliedAt.Format("2006-01-02T15:04:05Z07:00")
					}
					rows = append(rows, r)
				}
				return printJSON(e.stdout, rows)
			}
			tw := newTable(e.stdout, "VERSION", "NAME", "APPLIED")
			for _, m := range st {
				applied := "pending"
				if m.Applied {
					applied = m.AppliedAt.Format("2006-01-02 15:04:05Z07:00")
				}
				tw.row(m.Version, m.Name, applied)
			}
			return tw.flush()
		},
	}
	status.Flags().BoolVar(&statusJSON, "json", false, "print JSON")
	cmd.AddCommand(up, status)
	return cmd
}
