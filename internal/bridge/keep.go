package bridge

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Announcements are core NATS messages: a node that is not subscribed
// when one is published (not started yet, or cut off from NATS) would
// never hear of the blob. Where the NATS has JetStream, a stream keeps
// the announcements and replicated reports for Config.Keep, and each
// subscription is an ordered consumer that first replays what the stream
// holds, then follows it, and picks up where it was after a NATS outage.
// Announcements replayed for blobs already here cost a lookup each.

// DefaultKeep is how long announcements are kept for nodes that were
// away.
const DefaultKeep = 24 * time.Hour

// streamName is the JetStream stream of the announcements under prefix.
func streamName(prefix string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, prefix)) + "_ANNOUNCEMENTS"
}

// keepAnnouncements makes sure the stream exists and returns the
// JetStream context to consume it with; nil (with a logged reason) when
// announcements are not kept: Keep < 0, no JetStream, or NATS not
// answering now.
func (b *Bridge) keepAnnouncements() nats.JetStreamContext {
	if b.cfg.Keep < 0 {
		return nil
	}
	js, err := b.nc.JetStream(nats.MaxWait(5 * time.Second))
	if err == nil {
		p := b.cfg.Prefix
		cfg := &nats.StreamConfig{Name: streamName(p), Subjects: []string{p + ".blobs.>", p + ".replicated.>"}, MaxAge: b.cfg.Keep,
			Storage: nats.FileStorage, Discard: nats.DiscardOld, MaxMsgSize: maxPayload}
		if _, err = js.AddStream(cfg); errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
			_, err = js.UpdateStream(cfg)
		}
	}
	if err != nil {
		b.log.Warn("announcements are not kept in JetStream: a node away when one is published will not replicate that blob", "err", err)
		return nil
	}
	return js
}

// follow subscribes handler to subject: through the stream if js is set,
// else with a core subscription. The consumer's heartbeat is a second:
// after a NATS outage it notices within a few and resumes from the last
// announcement it had.
func (b *Bridge) follow(js nats.JetStreamContext, subject string, handler nats.MsgHandler) (*nats.Subscription, error) {
	if js == nil {
		return b.nc.Subscribe(subject, handler)
	}
	sub, err := js.Subscribe(subject, handler, nats.OrderedConsumer(), nats.DeliverAll(), nats.IdleHeartbeat(time.Second))
	if err != nil {
		return nil, fmt.Errorf("consume the announcements of %s from stream %s: %w", subject, streamName(b.cfg.Prefix), err)
	}
	return sub, nil
}
