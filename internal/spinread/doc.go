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
//
// Each poll that finds nothing yields the core (sched_yield). When the
// machine has more busy threads than cores, the peer that is about to
// answer may be waiting for the very core the poller holds: without the
// yield, 1 KiB CreateAndSeal ran at 10,000–14,000/s and a Get+Release took
// 230 µs at the median on this 2-core VM under a load of 12; with it,
// 43,000–66,000/s and 21–30 µs (plasma bench store, rounds interleaved).
// On an idle machine the yield returns at once and costs about what the
// failed read does. On a busy one it may hand the core to an unrelated
// thread for a while: the median Get+Release then takes about 20 µs
// rather than 11 µs at best, but never the 230 µs of a poller starving its
// peer. Yielding only after 3 or 10 µs of plain polling was tried and was
// worse under load (bimodal, 22,000–68,000/s).
package spinread
