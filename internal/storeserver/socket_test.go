package storeserver_test

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/storeserver"
	"github.com/plasmastream/plasmastream/internal/testutil"
)

func socketStat(t *testing.T, sock string) (fs.FileMode, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode(), fi.Sys().(*syscall.Stat_t)
}

// The socket is private by default: only its owner can connect.
func TestSocketPrivateByDefault(t *testing.T) {
	sock, _ := testutil.StartStore(t, 1<<20)
	mode, _ := socketStat(t, sock)
	if mode.Type() != fs.ModeSocket || mode.Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket of mode 0600", mode)
	}
	// The private directory it was bound in is gone.
	entries, _ := os.ReadDir(filepath.Dir(sock))
	if len(entries) != 1 {
		t.Errorf("socket directory holds %v, want the socket alone", entries)
	}
	testutil.StoreClient(t, sock) // and its owner can use it
}

// --socket-mode and --socket-group share the socket with a group (the
// process's own primary group, so the test works as root and not).
func TestSocketModeAndGroupFlags(t *testing.T) {
	gid := os.Getgid()
	sock, _ := testutil.StartStoreProcess(t, "1MiB", "--socket-mode", "0660", "--socket-group", strconv.Itoa(gid))
	mode, st := socketStat(t, sock)
	if mode.Perm() != 0o660 || int(st.Gid) != gid {
		t.Fatalf("socket mode %v group %d, want 0660 and group %d", mode.Perm(), st.Gid, gid)
	}
	testutil.StoreClient(t, sock)
}

func TestSocketFlagErrors(t *testing.T) {
	sock := filepath.Join(testutil.ShortDir(t), "s")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--socket-mode", "rw"}, "--socket-mode"},
		{[]string{"--socket-mode", "0999"}, "octal"},
		{[]string{"--socket-mode", "01777"}, "octal"},
		{[]string{"--socket-mode", "0060"}, "lock the store's own user out"},
		{[]string{"--socket-group", "no-such-group-plasma"}, "no such group"},
		{[]string{"--socket-group", "-5"}, "negative"},
	}
	for _, tc := range cases {
		msg := runFail(t, append([]string{"-s", sock, "-m", "1MiB"}, tc.args...)...)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%v: %q does not mention %q", tc.args, msg, tc.want)
		}
		if _, err := os.Lstat(sock); err == nil {
			t.Errorf("%v: the refused store left a socket", tc.args)
		}
	}
}

// The store logs who connects: uid, gid and pid from SO_PEERCRED.
func TestSocketLogsPeerCredentials(t *testing.T) {
	var logs testutil.Buffer
	s := testutil.StartStoreConfig(t, storeserver.Config{Capacity: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	testutil.StoreClient(t, s.Socket)
	want := fmt.Sprintf("pid=%d uid=%d gid=%d", os.Getpid(), os.Getuid(), os.Getgid())
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", want, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
