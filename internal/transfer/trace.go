package transfer

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/tracing"
)

// objectSpan records the receipt of one object of a COPY or TAKE, from
// its header to its verdict, as a span of the request in ctx.
func objectSpan(ctx context.Context, start time.Time, h *streamwire.ObjectHeader, peer string, status streamwire.Status, msg string) {
	_, span := tracing.Tracer().Start(ctx, "plasma.object", trace.WithTimestamp(start), trace.WithAttributes(
		attribute.String("plasma.object", h.ID.String()),
		attribute.String("plasma.peer", peer),
		attribute.Int64("plasma.bytes", int64(h.DataSize)+int64(h.MetaSize)),
		// Every object received is verified (its digest, and its outboard's
		// groups when it has one) before it is sealed.
		attribute.Bool("plasma.verified", status == streamwire.StatusOK),
	))
	var err error
	if !status.Success() {
		err = errors.New(msg)
	}
	tracing.End(span, status.String(), err)
}

// spans starts the span of a fetch and one per source (their contexts
// go with the RANGEs to that source); the returned function ends them
// with the result.
func (f *fetch) spans(ctx context.Context) (context.Context, func(FetchResult)) {
	ctx, span := tracing.Start(ctx, "plasma.fetch", trace.SpanKindInternal,
		attribute.String("plasma.object", f.id.String()), attribute.Int("plasma.sources", len(f.sources)))
	f.srcCtx = make([]context.Context, len(f.sources))
	srcSpans := make([]trace.Span, len(f.sources))
	for i, s := range f.sources {
		f.srcCtx[i], srcSpans[i] = tracing.Start(ctx, "plasma.fetch.source", trace.SpanKindClient,
			attribute.String("plasma.peer", s.Addr), attribute.String("plasma.peer.node", s.Node))
	}
	return ctx, func(res FetchResult) {
		for i, sp := range srcSpans {
			var err error
			if i < len(res.Sources) {
				sp.SetAttributes(attribute.Int64("plasma.bytes", int64(res.Sources[i].Bytes)))
				if res.Sources[i].Failed != "" {
					err = errors.New(res.Sources[i].Failed)
				}
			}
			tracing.End(sp, "", err)
		}
		span.SetAttributes(attribute.Int64("plasma.bytes", int64(res.Bytes)), attribute.Int64("plasma.resumed", int64(res.Resumed)),
			attribute.Bool("plasma.verified", res.Status == streamwire.StatusOK))
		tracing.End(span, res.Status.String(), nil)
	}
}
