package transfer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/store"
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
		r.Status = ErrStatus(err)
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

// ErrStatus classifies a peer-level failure.
func ErrStatus(err error) streamwire.Status {
	var er *streamwire.ErrorReply
	var pe *ProtocolError
	var se *store.Error
	var te interface{ Timeout() bool }
	var dns *net.DNSError
	var he *HandshakeError
	var ue *UntrustedPeerError
	switch {
	case errors.As(err, &ue), errors.As(err, &he):
		return streamwire.StatusPeerUnreachable // not a trusted node: nothing more to say
	case errors.As(err, &er):
		return er.Status
	case errors.Is(err, context.Canceled):
		return streamwire.StatusCancelled
	case errors.As(err, &pe):
		return streamwire.StatusProtocolError
	case errors.As(err, &se) || errors.Is(err, store.ErrClosed):
		return streamwire.StatusStoreError
	case errors.As(err, &te) && te.Timeout():
		return streamwire.StatusTimeout
	case errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return streamwire.StatusPeerUnreachable
	}
	return streamwire.StatusConnectionLost
}
