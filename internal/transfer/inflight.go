package transfer

import "sync/atomic"

// Inflight is a second handle on a server's Partials, for the RELAY side,
// kept only while plasma-stream-server's server.go and conn.go (edited on
// another branch) still create one and hand it to Send: the first Receive
// given both binds it to its Partials, and Send reads the registry
// through it. Once they pass SendOptions.Partials, this file goes.
type Inflight struct{ ps atomic.Pointer[Partials] }

// NewInflight makes an unbound handle.
func NewInflight() *Inflight { return &Inflight{} }

// bind ties f to ps, once.
func (f *Inflight) bind(ps *Partials) {
	if f != nil && ps != nil {
		f.ps.CompareAndSwap(nil, ps)
	}
}

// registry is the Partials f is bound to, or nil.
func (f *Inflight) registry() *Partials {
	if f == nil {
		return nil
	}
	return f.ps.Load()
}
