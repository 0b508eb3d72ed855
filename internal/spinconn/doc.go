// Package spinconn is a unix stream connection that polls its socket
// briefly before parking, and stays out of the Go runtime's network poller
// while it polls.
//
// A request/reply round trip to the store costs little CPU but, on virtual
// machines especially, a lot of wake-up latency, so both ends poll the
// socket for a short, bounded time after each message before parking (a
// Go ping-pong over a unix socket on the 2-core development VM: 27–32 µs
// per round trip when both sides parked, 7 µs when both polled).
//
// Polling alone is not enough in a real program. Go registers every
// socket it opens with one epoll instance, and whenever some goroutine of
// the process waits on the poller or a timer is pending (a listener, a
// ticker, another connection), an idle thread sleeps in epoll_wait, and
// every message arriving on any registered socket wakes it — including
// the messages the polling goroutine is about to read itself. On two cores
// that thread preempts one of the two pollers at every message: the same
// ping-pong rose from 7 µs to 16 µs with one idle listener in each
// process, and the store's Contains round trip measured 26–35 µs.
//
// So a Conn owns a duplicate of the socket's descriptor that is not
// registered with the runtime (Detach closes the original, which
// deregisters it), reads and writes it with plain system calls, and only
// to park hands the poller a temporary duplicate, closed again as soon as
// the socket is ready. With the socket out of the poller the ping-pong is
// back at 7 µs beside an idle listener.
//
// Costs: a parked Conn holds two descriptors (the socket and the poller's
// duplicate), and each park pays a dup, an epoll registration and its
// removal — a few microseconds, only after a whole spin window passed
// idle.
//
// Invariant: the descriptor is closed exactly once, by whichever of Close
// or the last Read/Write still running on it finishes last, so no read or
// write ever reaches a descriptor number the process has reused.
package spinconn
