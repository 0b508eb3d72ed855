package stream_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/stream"
)

// otlpReceiver is a real OTLP/gRPC trace collector: the servers export
// to it as to any collector.
type otlpReceiver struct {
	collector.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []gotSpan
}

type gotSpan struct {
	service, name, trace, id, parent string
	attrs                            map[string]string
}

func (r *otlpReceiver) Export(_ context.Context, req *collector.ExportTraceServiceRequest) (*collector.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.instance.id" {
				service = a.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, convert(service, s))
			}
		}
	}
	return &collector.ExportTraceServiceResponse{}, nil
}

func convert(service string, s *tracepb.Span) gotSpan {
	g := gotSpan{service: service, name: s.Name, trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId),
		parent: hex.EncodeToString(s.ParentSpanId), attrs: map[string]string{}}
	for _, a := range s.Attributes {
		switch v := a.Value.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			g.attrs[a.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			g.attrs[a.Key] = fmt.Sprint(v.IntValue)
		case *commonpb.AnyValue_BoolValue:
			g.attrs[a.Key] = fmt.Sprint(v.BoolValue)
		default:
			g.attrs[a.Key] = fmt.Sprint(v)
		}
	}
	return g
}

// of returns the spans of trace id.
func (r *otlpReceiver) of(trace string) []gotSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []gotSpan
	for _, s := range r.spans {
		if s.trace == trace {
			out = append(out, s)
		}
	}
	return out
}

func startReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{}
	srv := grpc.NewServer()
	collector.RegisterTraceServiceServer(srv, r)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return r, ln.Addr().String()
}

// tracedCluster starts nodes a, b and c in group "all", exporting spans
// to endpoint.
func tracedCluster(t *testing.T, endpoint string) []*testutil.Node {
	t.Helper()
	etcd := testutil.FreeAddr(t)
	var nodes []*testutil.Node
	for i, name := range []string{"a", "b", "c"} {
		args := []string{"--lease-ttl", "2s", "--group", "all", "--otlp-endpoint", "http://" + endpoint}
		if i == 0 {
			args = append(args, "--etcd", "embedded", "--etcd-dir", filepath.Join(t.TempDir(), "etcd"), "--etcd-listen", etcd)
		} else {
			args = append(args, "--etcd", "http://"+etcd)
		}
		nodes = append(nodes, testutil.StartNode(t, name, "64MiB", args...))
	}
	return nodes
}

// One trace follows a prefetch from the client through the node that
// takes it to every member that pulls it and every source that serves
// ranges: the context travels inside the stream protocol.
func TestPrefetchIsOneTraceAcrossNodes(t *testing.T) {
	recv, endpoint := startReceiver(t)
	nodes := tracedCluster(t, endpoint)
	a := nodes[0]
	id, _ := testutil.StoreClient(t, a.Socket).Put(bg, testutil.Pattern(6<<20, 51), nil)
	ca := streamClient(t, a.Addr)
	waitHolders(t, ca, id, "[a]")

	// The client's own span is the root: the library passes it on.
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(bg)
	ctx, root := tp.Tracer("test").Start(bg, "client prefetch")
	if out, err := ca.Prefetch(ctx, id, "all", true, 0); err != nil {
		t.Fatalf("prefetch: %v %+v", err, out)
	}
	root.End()
	traceID := root.SpanContext().TraceID().String()
	rootID := root.SpanContext().SpanID().String()

	// Spans arrive within the exporters' batch timeout (1 s).
	spans := recv.wait(t, traceID, // the node that took the request:
		"a plasma.PREFETCH",
		"b plasma.fetch", "c plasma.fetch", // each member fetched the object...
		"a plasma.RANGE",         // ...with ranges from a
		"a plasma.peer.prefetch", // a asked each member
		"b plasma.PULL", "c plasma.PULL", "b plasma.fetch.source",
		"b plasma.RANGE") // a member serves what it verified to the other
	// Every span hangs from the client's span or from another span of
	// the trace: nothing is cut off between nodes.
	connected(t, spans, rootID)
	for _, s := range spans {
		if s.name == "plasma.fetch" && (s.attrs["plasma.object"] != id.String() || s.attrs["plasma.status"] != "ok" || s.attrs["plasma.bytes"] != fmt.Sprint(6<<20)) {
			t.Errorf("fetch span on %s: %v", s.service, s.attrs)
		}
	}
	// A request without a span of its own starts no trace at the client.
	if strings.Contains(fmt.Sprint(recv.of("00000000000000000000000000000000")), "plasma") {
		t.Error("spans with an empty trace id")
	}
}

// wait returns the spans of trace once it has a span "NODE NAME" for
// each of want, or fails after 20 s naming those missing.
func (r *otlpReceiver) wait(t *testing.T, trace string, want ...string) []gotSpan {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		spans := r.of(trace)
		have := map[string]bool{}
		for _, s := range spans {
			have[s.service+" "+s.name] = true
		}
		var missing []string
		for _, w := range want {
			if !have[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return spans
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			var got []string
			for _, s := range spans {
				got = append(got, s.service+" "+s.name)
			}
			t.Fatalf("trace %s lacks %v; it has %v", trace, missing, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// connected fails for a span whose parent is neither root nor another
// span of spans: nothing is cut off between nodes.
func connected(t *testing.T, spans []gotSpan, root string) {
	t.Helper()
	ids := map[string]bool{root: true}
	for _, s := range spans {
		ids[s.id] = true
	}
	for _, s := range spans {
		if !ids[s.parent] {
			t.Errorf("span %s on %s has parent %s, not in the trace", s.name, s.service, s.parent)
		}
	}
}

// spanOf is the span "NODE NAME" of spans (the first).
func spanOf(spans []gotSpan, node, name string) gotSpan {
	for _, s := range spans {
		if s.service == node && s.name == name {
			return s
		}
	}
	return gotSpan{}
}

// SYNC with a COPY and a TAKE, and a cluster FETCH, are each one trace
// from the client's span over the node that runs the request and the
// nodes that send: the request's span, one per peer request, the source's
// span and one per object received with its bytes, verification and
// outcome.
func TestSyncCopyTakeFetchTraces(t *testing.T) {
	recv, endpoint := startReceiver(t)
	nodes := tracedCluster(t, endpoint)
	a, b, c := nodes[0], nodes[1], nodes[2]
	const size = 3 << 20
	copied, _ := testutil.StoreClient(t, b.Socket).Put(bg, testutil.Pattern(size, 61), nil)
	taken, _ := testutil.StoreClient(t, c.Socket).Put(bg, testutil.Pattern(size, 62), nil)
	fetched, _ := testutil.StoreClient(t, c.Socket).Put(bg, testutil.Pattern(size, 63), nil)
	ca := streamClient(t, a.Addr)
	waitHolders(t, ca, fetched, "[c]")

	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(bg)
	traced := func(name string, f func(ctx context.Context) error) (trace, root string) {
		t.Helper()
		ctx, span := tp.Tracer("test").Start(bg, name)
		if err := f(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		span.End()
		return span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()
	}
	syncOK := func(kind stream.Kind, from string, id stream.ObjectID) func(context.Context) error {
		return func(ctx context.Context) error {
			res, err := ca.Sync(ctx, []stream.PeerRequest{{Kind: kind, From: from, Objects: []stream.ObjectID{id}}})
			if err == nil && res.Peers[0].Status != stream.StatusOK {
				err = fmt.Errorf("%+v", res.Peers[0])
			}
			return err
		}
	}
	checkObject := func(spans []gotSpan, what string, id stream.ObjectID, peer string) {
		t.Helper()
		o := spanOf(spans, "a", "plasma.object")
		if o.attrs["plasma.object"] != id.String() || o.attrs["plasma.peer"] != peer || o.attrs["plasma.bytes"] != fmt.Sprint(size) ||
			o.attrs["plasma.verified"] != "true" || o.attrs["plasma.status"] != "ok" {
			t.Errorf("%s: the object's span: %v", what, o.attrs)
		}
	}

	trace, root := traced("client sync copy", syncOK(stream.Copy, b.Addr, copied))
	spans := recv.wait(t, trace, "a plasma.SYNC", "a plasma.peer.copy", "b plasma.COPY", "a plasma.object")
	connected(t, spans, root)
	checkObject(spans, "COPY", copied, b.Addr)
	if p := spanOf(spans, "a", "plasma.peer.copy"); p.attrs["plasma.peer"] != b.Addr || p.attrs["plasma.bytes"] != fmt.Sprint(size) || p.attrs["plasma.status"] != "ok" {
		t.Errorf("COPY: the peer request's span: %v", p.attrs)
	}

	trace, root = traced("client sync take", syncOK(stream.Take, c.Addr, taken))
	spans = recv.wait(t, trace, "a plasma.SYNC", "a plasma.peer.take", "c plasma.TAKE", "a plasma.object")
	connected(t, spans, root)
	checkObject(spans, "TAKE", taken, c.Addr)

	trace, root = traced("client fetch", func(ctx context.Context) error {
		res, err := ca.Fetch(ctx, []stream.ObjectID{fetched})
		if err == nil && res.Status != stream.StatusOK {
			err = fmt.Errorf("%+v", res)
		}
		return err
	})
	spans = recv.wait(t, trace, "a plasma.FETCH", "a plasma.fetch", "a plasma.fetch.source", "c plasma.RANGE")
	connected(t, spans, root)
	if f := spanOf(spans, "a", "plasma.fetch"); f.attrs["plasma.object"] != fetched.String() || f.attrs["plasma.bytes"] != fmt.Sprint(size) ||
		f.attrs["plasma.verified"] != "true" || f.attrs["plasma.status"] != "ok" {
		t.Errorf("FETCH: the fetch's span: %v", f.attrs)
	}
}
