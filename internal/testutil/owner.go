package testutil

import (
	"os"
	"testing"
)

// ForeignUID is the uid ForeignOwner gives a socket: nobody's.
const ForeignUID = 65534

// ForeignOwner hands path (a store's socket) to another user, ForeignUID,
// as if that user had created it first, so that clients must refuse it.
// Only root can give a file away: the test is skipped for other users
// (CI runs as root).
func ForeignOwner(t testing.TB, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can give a socket to another user")
	}
	if err := os.Chown(path, ForeignUID, ForeignUID); err != nil {
		t.Fatal(err)
	}
}
