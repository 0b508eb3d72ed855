// Package arena creates and maps the shared-memory file that holds every
// object of a store.
//
// The store creates one arena at start: an unlinked file in a directory
// (default /dev/shm) or, on request, a memfd. Its memory is reserved with
// fallocate before the store accepts clients, so a store that starts can
// never hit SIGBUS later because the tmpfs filled up (Plasma's failure when
// /dev/shm ran out); a store that cannot reserve its memory refuses to
// start and says how much was free. Clients receive the descriptor over
// the unix socket and map it once.
package arena
