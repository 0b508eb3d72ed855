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
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/plasmastream/plasmastream/internal/testutil"
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
		v := a.Value.GetStringValue()
		if v == "" {
			v = fmt.Sprint(a.Value.GetIntValue())
		}
		g.attrs[a.Key] = v
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

// One trace follows a prefetch from the client through the node that
// takes it to every member that pulls it and every source that serves
// ranges: the context travels inside the stream protocol.
func TestPrefetchIsOneTraceAcrossNodes(t *testing.T) {
	recv, endpoint := startReceiver(t)
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
	want := map[string]bool{
		"a plasma.PREFETCH":      false, // the node that took the request
		"b plasma.fetch":         false, // each member fetched the object...
		"c plasma.fetch":         false,
		"a plasma.RANGE":         false, // ...with ranges from a
		"a plasma.peer.prefetch": false, // a asked each member
		"b plasma.PULL":          false,
		"c plasma.PULL":          false,
		"b plasma.fetch.source":  false,
		"b plasma.RANGE":         false, // a member serves what it verified to the other
	}
	var spans []gotSpan
	deadline := time.Now().Add(20 * time.Second)
	for {
		spans = recv.of(traceID)
		for _, s := range spans {
			want[s.service+" "+s.name] = true
		}
		missing := []string{}
		for k, ok := range want {
			if !ok {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			var got []string
			for _, s := range spans {
				got = append(got, s.service+" "+s.name)
			}
			t.Fatalf("trace %s lacks %v; it has %v", traceID, missing, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every span hangs from the client's span or from another span of
	// the trace: nothing is cut off between nodes.
	ids := map[string]bool{rootID: true}
	for _, s := range spans {
		ids[s.id] = true
	}
	for _, s := range spans {
		if !ids[s.parent] {
			t.Errorf("span %s on %s has parent %s, not in the trace", s.name, s.service, s.parent)
		}
		if s.name == "plasma.fetch" && (s.attrs["plasma.object"] != id.String() || s.attrs["plasma.status"] != "ok" || s.attrs["plasma.bytes"] != fmt.Sprint(6<<20)) {
			t.Errorf("fetch span on %s: %v", s.service, s.attrs)
		}
	}
	// A request without a span of its own starts no trace at the client.
	if strings.Contains(fmt.Sprint(recv.of("00000000000000000000000000000000")), "plasma") {
		t.Error("spans with an empty trace id")
	}
}
