// Package tracing sets up OpenTelemetry traces (OTLP over HTTP or gRPC),
// off by default. The provider is passed to what records spans (the HTTP
// middleware, the store, password hashing, mail); nothing here sets the
// OpenTelemetry globals.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Exporters.
const (
	ExporterNone     = "none"
	ExporterOTLPHTTP = "otlphttp"
	ExporterOTLPGRPC = "otlpgrpc"
)

// Options configure Setup.
type Options struct {
	// Exporter is ExporterNone (or ""), ExporterOTLPHTTP or ExporterOTLPGRPC.
	Exporter string
	// Endpoint is the collector's URL (http://host:4318, or for gRPC
	// http://host:4317); empty leaves it to the standard
	// OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT of
	// the process environment, then the exporters' defaults.
	Endpoint string
	// SampleRatio is the share of traces started here that are recorded
	// (a caller's sampled traceparent is always followed).
	SampleRatio float64
	// Service is service.name; Version service.version.
	Service, Version string
}

// Tracing is the configured provider and its propagator.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	// Enabled is false for the no-op provider: instrumentation may skip
	// itself entirely then (the token path stays as it is).
	Enabled bool
	sdk     *sdktrace.TracerProvider
}

// Setup returns the tracing of o; with no exporter a no-op that records
// nothing and costs nothing.
func Setup(ctx context.Context, o Options) (*Tracing, error) {
	t := &Tracing{Provider: noop.NewTracerProvider(), Propagator: propagation.TraceContext{}}
	var (
		exp *otlptrace.Exporter
		err error
	)
	switch o.Exporter {
	case "", ExporterNone:
		return t, nil
	case ExporterOTLPHTTP:
		var opts []otlptracehttp.Option
		if o.Endpoint != "" {
			// The collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT
			// is: traces go to /v1/traces under it.
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimRight(o.Endpoint, "/")+"/v1/traces"))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case ExporterOTLPGRPC:
		var opts []otlptracegrpc.Option
		if o.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(o.Endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("tracing: unknown exporter %q (want none, otlphttp or otlpgrpc)", o.Exporter)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %s exporter: %w", o.Exporter, err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", o.Service), attribute.String("service.version", o.Version))
	t.sdk = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	t.Provider, t.Enabled = t.sdk, true
	return t, nil
}

// Shutdown flushes the spans still queued.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// Tracer is the named tracer of the provider.
func (t *Tracing) Tracer(name string) trace.Tracer { return t.Provider.Tracer(name) }

// Middleware starts a server span per request, continuing a W3C
// traceparent the caller sent. It names the span after the method; the
// router renames it after the route (NameByRoute). Off, it is h itself.
func (t *Tracing) Middleware(server string, h http.Handler) http.Handler {
	if !t.Enabled {
		return h
	}
	return otelhttp.NewHandler(h, server, otelhttp.WithTracerProvider(t.Provider), otelhttp.WithPropagators(t.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }))
}

// Transport traces outgoing requests (upstream identity providers) and
// sends traceparent along; off, it is base itself.
func (t *Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	if !t.Enabled {
		return base
	}
	return otelhttp.NewTransport(base, otelhttp.WithTracerProvider(t.Provider), otelhttp.WithPropagators(t.Propagator))
}

// NameSpan renames the request's span to "METHOD route" once the router
// knows the route template (never the raw path: ids would make every
// span name unique).
func NameSpan(r *http.Request, route string) {
	if s := trace.SpanFromContext(r.Context()); s.IsRecording() {
		s.SetName(r.Method + " " + route)
	}
}
