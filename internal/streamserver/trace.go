package streamserver

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
	"github.com/plasmastream/plasmastream/internal/transfer"
)

// traced are the requests that get a span: those that move or delete
// objects, and RANGE, the part of a fetch a source serves.
var traced = map[streamwire.Type]bool{
	streamwire.TypeSync: true, streamwire.TypeCopy: true, streamwire.TypeTake: true, streamwire.TypeRelay: true,
	streamwire.TypeRange: true, streamwire.TypeFetch: true, streamwire.TypePull: true, streamwire.TypePrefetch: true,
	streamwire.TypeDeleteAll: true, streamwire.TypeDeleteLocal: true,
}

// noSpan is what an untraced request ends: a span that records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// startSpan starts the server span of a request, continuing the trace
// of the TRACE frame that came before it, if any.
func (s *Server) startSpan(ctx context.Context, parent []byte, req request, peer string) (context.Context, trace.Span) {
	if !tracing.Enabled() || !traced[req.t] {
		return ctx, noSpan
	}
	if len(parent) > 0 {
		if pctx, err := tracing.DecodeParent(ctx, parent); err == nil {
			ctx = pctx
		} else {
			s.log.Debug("ignoring a malformed TRACE frame", "component", "tracing", "peer", peer, "err", err)
		}
	}
	attrs := []attribute.KeyValue{attribute.String("plasma.node", s.cfg.NodeName), attribute.String("plasma.client", peer)}
	switch {
	case req.sync != nil:
		attrs = append(attrs, attribute.Int("plasma.peers", len(req.sync.Peers)))
	case req.ids != nil:
		attrs = append(attrs, attribute.Int("plasma.objects", len(req.ids.IDs)))
	}
	return tracing.Start(ctx, "plasma."+req.t.String(), trace.SpanKindServer, attrs...)
}

// progressSink makes a FETCH or PULL whose client sent WANT-PROGRESS
// report PROGRESS frames while its transfers run (docs/stream-protocol.md).
func (s *Server) progressSink(ctx context.Context, c *transfer.Conn, req request) context.Context {
	switch req.t {
	case streamwire.TypeFetch:
		var m streamwire.Copy // decoded again by the handler, which answers a malformed one
		m.Decode(req.p)
		return transfer.WithSink(ctx, transfer.NewProgressSink(c, len(m.IDs), progressInterval))
	case streamwire.TypePull:
		return transfer.WithSink(ctx, transfer.NewProgressSink(c, 1, progressInterval))
	}
	return ctx
}
