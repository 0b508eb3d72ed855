package testutil

// Kill makes the proxy behave as a server that died: it stops accepting
// (new connections are refused), closes every connection open and lets
// stalled ones end. A connection accepted just before, whose dial to the
// target was still under way, is closed too: nothing passes after Kill.
func (p *Proxy) Kill() {
	p.ln.Close()
	p.mu.Lock()
	p.cut, p.killed = true, true
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.Resume()
}
