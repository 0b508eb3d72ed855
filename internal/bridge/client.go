package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Request sends payload to a bridge's subject and decodes the JSON reply
// into v (nil: not decoded); a reply {"error": ...} is returned as the
// error. Processes need not use it: any NATS client can (docs/nats-bridge.md).
func Request(nc *nats.Conn, subject string, payload []byte, timeout time.Duration, v any) error {
	m, err := nc.Request(subject, payload, timeout)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("no node answers %s: is a plasma-stream-server with --nats on this NATS (and, for a subject ending in a node name, is that node's --node-name right)?", subject)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	var e errorReply
	if json.Unmarshal(m.Data, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("reply to %s: %w", subject, err)
	}
	return nil
}
