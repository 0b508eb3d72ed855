package tracing

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestParentRoundTrip(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("t").Start(context.Background(), "root")
	defer span.End()
	if Parent(ctx) != nil {
		t.Fatal("Parent sent a context while this process exports nothing")
	}
	p := ParentOf(ctx)
	if !strings.HasPrefix(string(p), "00-"+span.SpanContext().TraceID().String()+"-"+span.SpanContext().SpanID().String()) {
		t.Fatalf("traceparent %q", p)
	}
	got, err := DecodeParent(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.SpanContextFromContext(got)
	if sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() || !sc.IsRemote() {
		t.Fatalf("decoded %+v", sc)
	}
	if ParentOf(context.Background()) != nil {
		t.Fatal("a context without a span gave a traceparent")
	}
	for _, bad := range []string{"", "junk", "00-00000000000000000000000000000000-0000000000000000-01", strings.Repeat("a", MaxParent+1)} {
		if _, err := DecodeParent(context.Background(), []byte(bad)); err == nil {
			t.Errorf("DecodeParent(%.40q) accepted", bad)
		}
	}
}

func TestSetupErrors(t *testing.T) {
	for _, bad := range []string{"ftp://h:1", "http://"} {
		if _, err := Setup(context.Background(), bad, "s", "n", nil); err == nil || !strings.Contains(err.Error(), "--otlp-endpoint") {
			t.Errorf("Setup(%q): %v", bad, err)
		}
	}
	stop, err := Setup(context.Background(), "", "s", "n", nil)
	if err != nil || Enabled() {
		t.Fatalf("no endpoint: %v, enabled %v", err, Enabled())
	}
	stop(context.Background())
}

// FuzzDecodeParent: a TRACE frame's payload comes from any peer.
func FuzzDecodeParent(f *testing.F) {
	f.Add([]byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	f.Add([]byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nvendor=x"))
	f.Add([]byte("ff-zz"))
	f.Fuzz(func(t *testing.T, p []byte) {
		ctx, err := DecodeParent(context.Background(), p)
		if err == nil && !trace.SpanContextFromContext(ctx).IsValid() {
			t.Fatal("accepted a payload without a valid span context")
		}
	})
}
