package storeserver

import (
	"context"
	"errors"

	"github.com/plasmastream/plasmastream/internal/coldtier"
	"github.com/plasmastream/plasmastream/internal/storewire"
)

// What a stream server in a cluster needs of the cold tier: its URL (to
// record cold copies in the directory, and to tell whether a copy another
// node recorded is in this store's tier), events when copies are written
// and deleted, and adopting a copy another store wrote.

// coldURL is the tier's URL without credentials, "" without a tier.
func (s *state) coldURL() string {
	if s.cold == nil {
		return ""
	}
	return s.cold.tier.String()
}

// adopt reads the records of ids from the tier, for objects this store
// does not know (another store wrote them there), so that a Get restores
// them: CodeOK for an object the store now knows (in memory, cold, or
// just adopted), CodeObjectNotFound for one the tier does not hold. It
// runs on the requesting connection's goroutine, as persist does; unlike
// --cold-shared lookups it remembers no miss.
func (s *state) adopt(ids []storewire.ID) ([]storewire.Code, error) {
	cs := s.cold
	if cs == nil {
		return nil, errf(storewire.CodeInvalidRequest, "adopt: this store has no cold tier; start it with -e file:///dir or -e s3://bucket/prefix")
	}
	codes := make([]storewire.Code, len(ids))
	for i, oid := range ids {
		s.mu.Lock()
		_, known := s.objects[oid]
		known = known || cs.entries[oid] != nil
		s.mu.Unlock()
		if known {
			continue
		}
		ctx, cancel := context.WithTimeout(cs.ctx, cs.timeout)
		rec, err := cs.tier.GetRecord(ctx, oid)
		cancel()
		switch {
		case errors.Is(err, coldtier.ErrNotFound):
			codes[i] = storewire.CodeObjectNotFound
			continue
		case err != nil:
			return nil, errf(storewire.CodeColdTier, "adopt %s: cold tier %s: %v", oid.String(), cs.tier, err)
		}
		s.mu.Lock()
		if _, inMemory := s.objects[oid]; !inMemory && cs.entries[oid] == nil {
			cs.entries[oid] = &coldEntry{rec: rec}
			delete(cs.missed, oid)
		}
		s.mu.Unlock()
	}
	return codes, nil
}

// publishCold tells the subscribers of cold events (SubscribeCold) that
// the tier now holds rec's object (EventCold) or no longer does
// (EventColdDeleted). Caller holds s.mu.
func (s *state) publishCold(kind uint8, rec coldtier.Record) {
	if len(s.subs) == 0 {
		return
	}
	ev := storewire.Event{Kind: kind, ID: rec.ID, DataSize: rec.DataSize, MetaSize: uint32(len(rec.Metadata)),
		TimeNs: s.now().UnixNano(), HasDigest: true, Digest: rec.Digest}
	for c := range s.subs {
		if !c.cold {
			continue
		}
		if !c.events.push(ev) {
			delete(s.subs, c)
			go c.drop()
		}
	}
}
