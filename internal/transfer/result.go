package transfer

import (
	"context"
	"errors"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// Summarize sets a peer result's status, totals and messages from its
// objects: every failure names the object and the peer.
func Summarize(r streamwire.PeerResult, err error) streamwire.PeerResult {
	failed := 0
	for i := range r.Objects {
		o := &r.Objects[i]
		r.Bytes += o.Bytes
		if o.Status.Success() {
			continue
		}
		failed++
		o.Message = fmt.Sprintf("object %x from %s: %s", o.ID[:], r.Addr, joinMsg(o.Status.String(), o.Message))
		if r.Status == streamwire.StatusOK {
			r.Status = o.Status
		}
	}
	switch {
	case err != nil:
		r.Status = streamwire.StatusConnectionLost
		if errors.Is(err, context.Canceled) {
			r.Status = streamwire.StatusCancelled
		}
		r.Message = fmt.Sprintf("peer %s: %v (%d of %d objects not received)", r.Addr, err, failed, len(r.Objects))
	case failed > 0:
		r.Message = fmt.Sprintf("%d of %d objects from %s failed", failed, len(r.Objects), r.Addr)
	}
	return r
}

func joinMsg(status, msg string) string {
	if msg == "" {
		return status
	}
	return status + ": " + msg
}
