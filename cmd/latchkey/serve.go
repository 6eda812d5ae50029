package main

import (
	"context"
	"errors"
	"io"

	"github.com/latchkey/latchkey/internal/config"
)

// runServe starts the public and admin listeners and blocks until ctx ends.
// (Owned by the provider work; a stub until it lands.)
func runServe(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	_ = ctx
	_ = cfg
	_ = stdout
	return errors.New("serve: not implemented yet")
}
