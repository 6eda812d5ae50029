package sqlstore

import (
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"go.opentelemetry.io/otel/trace"
)

// An Option configures a store at Open. A store is never reconfigured
// after Open: it has no exported fields and no setters.
type Option func(*options)

type options struct {
	newSession     func() fosite.Session
	clientCacheTTL time.Duration
	maxOpenConns   int
	tracer         trace.Tracer
}

func defaultOptions() options {
	return options{newSession: func() fosite.Session { return openid.NewDefaultSession() }}
}

// WithTracer records a span per SQL statement (its text with placeholders,
// never the values). Without it statements cost no tracing at all.
func WithTracer(t trace.Tracer) Option {
	return func(o *options) { o.tracer = t }
}

// WithSessionFactory sets the function that makes the empty session a
// stored pushed authorization request is unmarshalled into (fosite's
// GetPARSession passes no prototype). The default is
// openid.NewDefaultSession; the server passes its own session type.
func WithSessionFactory(newSession func() fosite.Session) Option {
	return func(o *options) {
		if newSession != nil {
			o.newSession = newSession
		}
	}
}

// WithClientCacheTTL turns on the client cache (ttl > 0): a client read
// is served from memory for ttl. fosite reads the client on every
// authentication and every token lookup; with the cache a
// client_credentials token costs one INSERT. A change made through this
// store is visible at once, one made through another replica within ttl.
// Default: off.
func WithClientCacheTTL(ttl time.Duration) Option {
	return func(o *options) { o.clientCacheTTL = ttl }
}

// WithMaxOpenConns caps the connection pool at n open (and n idle)
// connections, replacing the dialect's default; n <= 0 keeps the default.
func WithMaxOpenConns(n int) Option {
	return func(o *options) { o.maxOpenConns = n }
}
