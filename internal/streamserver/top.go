package streamserver

import (
	"encoding/json"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
	"github.com/plasmastream/plasmastream/internal/transfer"
)

// activityReply answers ACTIVITY (what plasma top shows): the node's
// transfer counters since it started, its transfers under way with their
// bytes so far, the recent ones and the recent errors. It tells a reader
// nothing the dashboard does not.
func (s *Server) activityReply(c *transfer.Conn) (streamwire.Status, error) {
	a := streamwire.Activity{
		Node: s.cfg.NodeName, Time: time.Now(), Started: s.start,
		BytesSent: s.stats.BytesSent.Load(), ObjectsSent: s.stats.ObjectsSent.Load(),
		BytesReceived: s.stats.BytesReceived.Load(), ObjectsReceived: s.stats.ObjectsReceived.Load(),
		BytesVerified: s.stats.BytesVerified.Load(), Arriving: s.activity.Received(),
		Connections: s.active.Load(), Transfers: s.activity.Snapshot(),
	}
	b, err := json.Marshal(a)
	if err != nil {
		return streamwire.StatusInternal, err
	}
	return streamwire.StatusOK, c.Send(streamwire.TypeActivity|streamwire.ReplyBit, streamwire.JSON{Body: b}.Append(nil))
}
