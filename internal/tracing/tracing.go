// Package tracing is the servers' OpenTelemetry tracing: spans for the
// requests that move objects (SYNC, COPY, TAKE, FETCH, PULL, PREFETCH, per
// peer and per object), exported with OTLP over gRPC when an endpoint is
// configured (--otlp-endpoint) and costing nothing otherwise, and the
// trace context carried between nodes inside the stream protocol: a TRACE
// frame (docs/stream-protocol.md) holding a W3C traceparent goes before a
// request, so one trace follows a prefetch across every node it touches.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// enabled is set while an exporter is installed: only then are TRACE
// frames sent (a server of an older release would refuse them).
var enabled atomic.Bool

// Enabled reports whether spans are exported.
func Enabled() bool { return enabled.Load() }

// Tracer is the tracer of every span of the product.
func Tracer() trace.Tracer { return otel.Tracer("github.com/plasmastream/plasmastream") }

var propagator = propagation.TraceContext{}

// Setup exports spans to the OTLP/gRPC collector at endpoint
// ("host:port" or "http://host:port" for plain gRPC, "https://host:port"
// for TLS), naming this process service/node. The returned function
// flushes and stops the exporter (bounded by ctx). With endpoint "" it
// does nothing.
func Setup(ctx context.Context, endpoint, service, node string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	if endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{}
	host := endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--otlp-endpoint %q: want host:port, http://host:port or https://host:port", endpoint)
		}
		host = u.Host
		switch u.Scheme {
		case "http":
			opts = append(opts, otlptracegrpc.WithInsecure())
		case "https":
		default:
			return nil, fmt.Errorf("--otlp-endpoint %q: scheme %s: want http or https", endpoint, u.Scheme)
		}
	} else {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	opts = append(opts, otlptracegrpc.WithEndpoint(host), otlptracegrpc.WithTimeout(5*time.Second))
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter for %s: %w", endpoint, err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", service),
		attribute.String("service.instance.id", node),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: exporting spans failed", "component", "tracing", "endpoint", endpoint, "err", err)
	}))
	enabled.Store(true)
	log.Info("exporting traces", "component", "tracing", "endpoint", endpoint)
	return func(ctx context.Context) error {
		enabled.Store(false)
		return tp.Shutdown(ctx)
	}, nil
}

// MaxParent bounds a TRACE frame's payload.
const MaxParent = 512

// Parent is the W3C traceparent (and tracestate, after a newline) of
// ctx's span, or nil when tracing is off or ctx has no span: what a TRACE
// frame carries.
func Parent(ctx context.Context) []byte {
	if !Enabled() {
		return nil
	}
	return ParentOf(ctx)
}

// ParentOf is Parent whether or not this process exports spans: a
// client library passes on the trace of the program that uses it.
func ParentOf(ctx context.Context) []byte {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	carrier := propagation.MapCarrier{}
	propagator.Inject(ctx, carrier)
	p := carrier["traceparent"]
	if st := carrier["tracestate"]; st != "" {
		p += "\n" + st
	}
	if len(p) > MaxParent {
		p = carrier["traceparent"]
	}
	return []byte(p)
}

// ErrBadParent is returned by DecodeParent for a payload that is not a
// traceparent.
var ErrBadParent = errors.New("TRACE: not a W3C traceparent")

// DecodeParent reads a TRACE frame's payload into a remote span context
// to continue in ctx. A malformed payload is an error (the request is
// then refused as malformed).
func DecodeParent(ctx context.Context, p []byte) (context.Context, error) {
	if len(p) > MaxParent {
		return ctx, fmt.Errorf("%w: %d bytes, at most %d", ErrBadParent, len(p), MaxParent)
	}
	parent, state, _ := strings.Cut(string(p), "\n")
	carrier := propagation.MapCarrier{"traceparent": parent}
	if state != "" {
		carrier["tracestate"] = state
	}
	out := propagator.Extract(ctx, carrier)
	if !trace.SpanContextFromContext(out).IsValid() {
		return ctx, ErrBadParent
	}
	return out, nil
}

// Start starts a span named name (for example "plasma.SYNC") as a child
// of ctx's span.
func Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return Tracer().Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// End records the outcome of a span: its status name and, for a
// failure, the error; then ends it.
func End(span trace.Span, status string, err error) {
	span.SetAttributes(attribute.String("plasma.status", status))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else if status != "" && status != "ok" && status != "already present" {
		span.SetStatus(codes.Error, status)
	}
	span.End()
}
