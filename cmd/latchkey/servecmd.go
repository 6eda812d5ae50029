package main

import (
	"github.com/spf13/cobra"
)

func (e *env) serveCmd() *cobra.Command {
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the OpenID Connect provider (public listener) and the admin listener",
		Long: "serve migrates the database (unless --migrate=false), loads or creates the\n" +
			"signing keys and serves the protocol endpoints and login pages on\n" +
			"LATCHKEY_HTTP_ADDR and health, readiness and metrics on LATCHKEY_ADMIN_ADDR.\n" +
			"--demo also creates (once) a demo user and client and prints how to sign in.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := e.load(cmd)
			if err != nil {
				return err
			}
			var onReady func(*app) error
			if demo {
				onReady = func(a *app) error { return setupDemo(cmd.Context(), a, e.stdout) }
			}
			return runServe(cmd.Context(), cfg, e.stdout, log, onReady)
		},
	}
	cmd.Flags().BoolVar(&demo, "demo", false, "create a demo user and client and print a sign-in URL (for `make run`)")
	return cmd
}
