package testutil

import (
	"os"
	"os/exec"
	"testing"

	"github.com/creack/pty"
)

// StartPTY starts cmd on a new pseudo-terminal of rows × cols and returns
// the terminal (write to it to type), what the terminal shows so far, and
// a channel closed once it has shown everything (cmd and its children
// have exited). The terminal is closed at the end of the test.
func StartPTY(t testing.TB, cmd *exec.Cmd, rows, cols uint16) (*os.File, *Buffer, <-chan struct{}) {
	t.Helper()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	screen := new(Buffer)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		<-copied
	})
	return tty, screen, copied
}
