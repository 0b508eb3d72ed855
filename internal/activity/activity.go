package activity

import (
	"cmp"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plasmastream/plasmastream/internal/streamwire"
)

// Bounds of what a Registry keeps.
const (
	Recent      = 50 // finished transfers
	Errors      = 50 // errors
	MaxOutcomes = 16 // per-object outcomes of one finished transfer
)

// Registry records transfers and errors; the zero value is not usable,
// use New.
type Registry struct {
	received atomic.Int64 // bytes moved by incoming transfers, ever
	log      *slog.Logger // each transfer's start and end (component=transfer)

	mu     sync.Mutex
	next   uint64
	active map[uint64]*Transfer
	recent []Record // oldest first, at most Recent
	errors []Error  // oldest first, at most Errors
}

// New returns an empty registry that also logs each transfer to log
// (nil: no logging): its start and success at debug level, a failure at
// info, so that --log-level info,transfer=debug shows every transfer.
func New(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{active: map[uint64]*Transfer{}, log: log}
}

// Transfer is one transfer under way. Add and Expect may be called from
// several goroutines at once.
type Transfer struct {
	r        *Registry
	id       uint64
	incoming bool
	kind     string
	peer     string
	objects  int
	start    time.Time

	bytes, total, done atomic.Int64
}

// Direction of a transfer, seen from this node.
type Direction bool

const (
	In  Direction = true // into the local store
	Out Direction = false
)

// Begin records a transfer of objects objects of kind ("sync copy",
// "send copy", "fetch", ...) with peer (an address or node names).
func (r *Registry) Begin(dir Direction, kind, peer string, objects int) *Transfer {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	t := &Transfer{r: r, id: r.next, incoming: bool(dir), kind: kind, peer: peer, objects: objects, start: time.Now()}
	r.active[t.id] = t
	r.log.Debug("transfer started", "transfer", t.id, "kind", kind, "peer", peer, "objects", objects)
	return t
}

// Add counts bytes moved and objects completed (the signature of
// transfer.ReceiveOptions.Progress).
func (t *Transfer) Add(bytes int64, objects int) {
	if t == nil {
		return
	}
	t.bytes.Add(bytes)
	t.done.Add(int64(objects))
	if t.incoming {
		t.r.received.Add(bytes)
	}
}

// Received is the bytes incoming transfers have moved so far, counted as
// they arrive (the dashboard's throughput).
func (r *Registry) Received() int64 {
	if r == nil {
		return 0
	}
	return r.received.Load()
}

// AddBytes counts bytes moved (transfer.FetchOptions.Progress).
func (t *Transfer) AddBytes(bytes int64) { t.Add(bytes, 0) }

// Expect adds bytes to the transfer's announced total, as objects'
// sizes become known.
func (t *Transfer) Expect(bytes int64) {
	if t != nil {
		t.total.Add(bytes)
	}
}

// The records are the protocol's (ACTIVITY replies carry them).
type (
	Outcome = streamwire.TransferOutcome
	Record  = streamwire.TransferRecord
	Error   = streamwire.TransferError
)

func (t *Transfer) record(now time.Time) Record {
	return Record{ID: t.id, Kind: t.kind, Peer: t.peer, Start: t.start, Duration: now.Sub(t.start).Seconds(),
		Bytes: t.bytes.Load(), Total: t.total.Load(), Objects: t.objects, Done: t.done.Load()}
}

// End finishes the transfer with its per-object results and its
// transfer-level error (nil if none); failures are also recorded as
// errors.
func (t *Transfer) End(results []streamwire.ObjectResult, err error) {
	if t == nil {
		return
	}
	rec := t.record(time.Now())
	rec.Finished = true
	var failures []Outcome
	for _, o := range results {
		oc := Outcome{ID: o.ID.String(), Status: o.Status.String(), OK: o.Status.Success(), Bytes: o.Bytes, Message: o.Message}
		if !oc.OK {
			rec.Failed++
			failures = append(failures, oc)
		}
		if len(rec.Outcomes) < MaxOutcomes {
			rec.Outcomes = append(rec.Outcomes, oc)
		}
	}
	if rec.Failed > 0 && len(results) > MaxOutcomes {
		// Show the failures first: they are why one looks.
		rec.Outcomes = slices.Concat(failures, rec.Outcomes)[:MaxOutcomes]
	}
	if err != nil {
		rec.Error = err.Error()
	}
	r := t.r
	attrs := []any{"transfer", t.id, "kind", t.kind, "peer", t.peer, "objects", t.objects, "failed", rec.Failed,
		"bytes", rec.Bytes, "seconds", rec.Duration}
	switch {
	case err != nil:
		r.log.Info("transfer failed", append(attrs, "err", err)...)
	case len(failures) > 0:
		r.log.Info("transfer finished with failed objects", append(attrs, "first_failure", failures[0].ID+": "+failures[0].Status+" "+failures[0].Message)...)
	default:
		r.log.Debug("transfer finished", attrs...)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.active, t.id)
	r.recent = appendBounded(r.recent, rec, Recent)
	switch {
	case err != nil:
		r.errors = appendBounded(r.errors, Error{Time: time.Now(), Where: t.kind + " " + t.peer, Message: err.Error()}, Errors)
	case len(failures) > 0:
		msg := failures[0].Message
		if msg == "" {
			msg = "object " + failures[0].ID + ": " + failures[0].Status
		}
		r.errors = appendBounded(r.errors, Error{Time: time.Now(), Where: t.kind + " " + t.peer, Message: msg}, Errors)
	}
}

// Error records a failure that is not a transfer's (a request refused,
// a connection broken).
func (r *Registry) Error(where, msg string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = appendBounded(r.errors, Error{Time: time.Now(), Where: where, Message: msg}, Errors)
}

// Snapshot is the registry's content, newest first.
type Snapshot = streamwire.Transfers

// Snapshot copies what the registry holds.
func (r *Registry) Snapshot() Snapshot {
	s := Snapshot{Active: []Record{}, Recent: []Record{}, Errors: []Error{}}
	if r == nil {
		return s
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.active {
		s.Active = append(s.Active, t.record(now))
	}
	slices.SortFunc(s.Active, func(a, b Record) int { return cmp.Compare(b.ID, a.ID) })
	for i := len(r.recent) - 1; i >= 0; i-- {
		s.Recent = append(s.Recent, r.recent[i])
	}
	for i := len(r.errors) - 1; i >= 0; i-- {
		s.Errors = append(s.Errors, r.errors[i])
	}
	return s
}

// appendBounded appends v, dropping the oldest beyond max.
func appendBounded[T any](s []T, v T, max int) []T {
	if len(s) >= max {
		s = slices.Delete(s, 0, len(s)-max+1)
	}
	return append(s, v)
}
