package storeserver

import (
	"fmt"
	"time"

	"github.com/plasmastream/plasmastream/internal/storewire"
)

// decoder is a request message.
type decoder interface{ Decode([]byte) error }

func decode(m decoder, p []byte) error {
	if err := m.Decode(p); err != nil {
		return &opError{code: storewire.CodeInvalidRequest, msg: err.Error()}
	}
	return nil
}

// handle runs one request and returns the reply type and payload. A nil
// payload with a nil error means the reply is sent later or was already
// sent.
func (cn *conn) handle(h storewire.Header, p []byte) (storewire.Type, []byte, error) {
	st, c := cn.s.st, cn.c
	t := storewire.Type(h.Type)
	rt := t | storewire.ReplyBit
	switch t {
	case storewire.TypeCreate:
		var m storewire.Create
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		loc, err := st.create(c, &m)
		if err != nil {
			return 0, nil, err
		}
		return rt, loc.Append(nil), nil
	case storewire.TypeCreateAndSeal:
		var m storewire.CreateAndSeal
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		return rt, []byte{}, st.createAndSeal(c, &m)
	case storewire.TypeCreateAndSealBatch:
		var m storewire.CreateAndSealBatch
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		return rt, storewire.CreateAndSealBatchReply{Results: st.createAndSealBatch(c, m.Objects)}.Append(nil), nil
	case storewire.TypeSeal:
		var m storewire.Seal
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		return rt, []byte{}, st.seal(c, &m)
	case storewire.TypeOutboard:
		var m storewire.ObjectRef
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		r, err := st.outboard(m.ID)
		if err != nil {
			return 0, nil, err
		}
		return rt, r.Append(nil), nil
	case storewire.TypeSetOutboard:
		var m storewire.SetOutboard
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		return rt, []byte{}, st.setOutboard(&m)
	case storewire.TypeAbort, storewire.TypeContains:
		var m storewire.ObjectRef
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		if t == storewire.TypeAbort {
			return rt, []byte{}, st.abort(c, m.ID)
		}
		var has storewire.Code
		if st.contains(m.ID) {
			has = 1
		}
		return rt, storewire.Codes{Codes: []storewire.Code{has}}.Append(nil), nil
	case storewire.TypeGet:
		var m storewire.Get
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		reply, err := st.get(c, h.ReqID, &m)
		return rt, reply, err
	case storewire.TypeDelete, storewire.TypeRelease:
		var m storewire.IDList
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		if t == storewire.TypeDelete {
			codes, cold := st.deleteIDs(m.IDs)
			st.dropCold(cold, codes)
			return rt, storewire.Codes{Codes: codes}.Append(nil), nil
		}
		return rt, storewire.Codes{Codes: st.release(c, m.IDs)}.Append(nil), nil
	case storewire.TypeColdTier:
		if len(p) != 0 {
			return 0, nil, errf(storewire.CodeInvalidRequest, "cold tier: the request takes no payload (%d bytes given)", len(p))
		}
		return rt, storewire.ColdTierReply{URL: st.coldURL()}.Append(nil), nil
	case storewire.TypePersist, storewire.TypeAdopt:
		var m storewire.IDList
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		persist := st.persist
		if t == storewire.TypeAdopt {
			persist = st.adopt
		}
		codes, err := persist(m.IDs)
		if err != nil {
			return 0, nil, err
		}
		return rt, storewire.Codes{Codes: codes}.Append(nil), nil
	case storewire.TypeList:
		return 0, nil, cn.list(h.ReqID)
	case storewire.TypeEvict:
		var m storewire.Number
		if err := decode(&m, p); err != nil {
			return 0, nil, err
		}
		return rt, storewire.Number{N: st.evict(m.N)}.Append(nil), nil
	case storewire.TypeStats:
		return rt, st.stats().Append(nil), nil
	case storewire.TypeSubscribe:
		var m storewire.Subscribe
		if len(p) > 0 { // an empty payload (older clients) asks for no flags
			if err := decode(&m, p); err != nil {
				return 0, nil, err
			}
		}
		known := storewire.SubscribeDigests | storewire.SubscribeQuiet | storewire.SubscribeInfo | storewire.SubscribeSnapshot | storewire.SubscribeCold
		if m.Flags&^known != 0 || (m.Flags&storewire.SubscribeQuiet != 0 && m.Flags != storewire.SubscribeQuiet) {
			return 0, nil, errf(storewire.CodeInvalidRequest, "subscribe: flags %#x: this store knows %#x (digest events), %#x (info), %#x (snapshot), %#x (cold events) and %#x (no events, alone)",
				m.Flags, storewire.SubscribeDigests, storewire.SubscribeInfo, storewire.SubscribeSnapshot, storewire.SubscribeCold, storewire.SubscribeQuiet)
		}
		if m.Flags&storewire.SubscribeQuiet == 0 {
			cn.subscribe(m.Flags)
		}
		return rt, []byte{}, nil
	}
	return 0, nil, errf(storewire.CodeInvalidRequest, "unknown request type %d", h.Type)
}

// list sends the object table in pages; every page but the last has More.
func (cn *conn) list(reqID uint32) error {
	infos := cn.s.st.list()
	for {
		n := min(len(infos), storewire.MaxInfosPerPage)
		page := storewire.ListReply{More: n < len(infos), Infos: infos[:n]}
		if err := cn.reply(storewire.TypeList|storewire.ReplyBit, reqID, page.Append(nil)); err != nil {
			return fmt.Errorf("send list: %w", err)
		}
		infos = infos[n:]
		if len(infos) == 0 {
			return nil
		}
	}
}

// eventBatch is the most events one write sends to a subscriber.
const eventBatch = 256

// eventLinger is how long a subscriber's writer waits, after the first
// event of a batch, for more to join it.
const eventLinger = 500 * time.Microsecond

// subscribe starts the goroutine that forwards events to this client
// (what flags ask for). It ends when the state closes the queue at
// disconnect. A second Subscribe on the connection changes nothing.
func (cn *conn) subscribe(flags uint32) {
	if cn.c.events != nil {
		return
	}
	events := cn.s.st.subscribe(cn.c, cn.s.cfg.EventQueue, flags)
	cn.wg.Add(1)
	go func() {
		defer cn.wg.Done()
		// Events are sent in batches, one write each: a busy store's
		// subscriber costs a system call per batch, not per event.
		var batch []storewire.Event
		var frames, payload []byte
		for {
			var ok bool
			if batch, ok = events.popBatch(batch[:0], eventBatch); len(batch) == 0 && !ok {
				return
			}
			if ok && len(batch) < eventBatch {
				// Let the events of the next moment join this write: a
				// store sealing thousands of objects a second then wakes
				// its subscriber (a stream server streaming state) once
				// per eventLinger, not once per seal.
				time.Sleep(eventLinger)
				batch, _ = events.tryPopBatch(batch, eventBatch-len(batch))
			}
			frames = frames[:0]
			for i := range batch {
				payload = batch[i].Append(payload[:0])
				frames = storewire.AppendFrame(frames, storewire.TypeEvent, 0, payload)
			}
			clear(batch)
			if cn.write(frames) != nil {
				cn.close()
			}
			if cap(frames) > keepBuffer {
				frames = nil
			}
		}
	}()
}
