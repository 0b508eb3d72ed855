// Package spinread reads a socket by polling it briefly before parking.
//
// A request/reply round trip over a unix socket costs little CPU but, on
// virtual machines especially, a lot of wake-up latency: a goroutine that
// parks in the network poller is woken through epoll, a futex and often a
// virtual interrupt. Measured on the 2-core VM this project is developed
// on: a Go ping-pong over a unix socket took 27–32 µs per round trip when
// both sides parked and 12 µs when both polled first. The store's replies
// come within microseconds and clients send their next request (a Release
// after a Get, the next Create) right away, so both sides poll for a short,
// bounded time before falling back to the poller; an idle connection costs
// at most one such window of CPU per message.
package spinread
