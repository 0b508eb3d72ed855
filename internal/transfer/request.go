package transfer

import (
	"encoding/json"
	"fmt"

	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// RequestJSON sends a request of type t whose reply is JSON (the cluster
// requests, PULL, DELETE) and decodes the reply into v. The reply may take
// as long as the work (ExpectSlow: the caller's context bounds it); an
// ErrorReply in its place is returned as the error.
func (c *Conn) RequestJSON(t streamwire.Type, payload []byte, v any) error {
	return c.RequestJSONProgress(t, payload, v, nil)
}

// RequestJSONProgress is RequestJSON with the PROGRESS frames a server
// sends before the reply (after a WANT-PROGRESS frame) going to progress.
func (c *Conn) RequestJSONProgress(t streamwire.Type, payload []byte, v any, progress func(streamwire.Progress)) error {
	if progress != nil {
		if err := c.WriteFrame(streamwire.TypeWantProgress, nil); err != nil {
			return err
		}
	}
	if err := c.Send(t, payload); err != nil {
		return err
	}
	var m streamwire.JSON
	if err := c.ExpectSlowProgress(t|streamwire.ReplyBit, &m, progress); err != nil {
		return err
	}
	if err := json.Unmarshal(m.Body, v); err != nil {
		return &ProtocolError{Msg: fmt.Sprintf("%s reply: %v", t, err)}
	}
	return nil
}
