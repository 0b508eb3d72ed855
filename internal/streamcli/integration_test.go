package streamcli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plasmastream/plasmastream/internal/testutil"
	"github.com/plasmastream/plasmastream/store"
	"github.com/plasmastream/plasmastream/stream"
)

// raceEnv is the environment for a binary built with -race, without the
// race runtime's one-second pause at exit.
func raceEnv() []string {
	return append(os.Environ(), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// cli runs plasma-stream-cli -a addr with input on a pipe.
func cli(t *testing.T, addr, input string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if addr != "" {
		args = append([]string{"-a", addr}, args...)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.Binaries(t), "plasma-stream-cli"), args...)
	cmd.Stdin = strings.NewReader(input)
	cmd.Env = raceEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("plasma-stream-cli: %v", err)
	}
	return out.String(), errb.String(), code
}

func contains(t *testing.T, c *store.Client, id stream.ObjectID) bool {
	t.Helper()
	ok, err := c.Contains(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func joinIDs(ids ...stream.ObjectID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, " ")
}

var okTransfer = regexp.MustCompile(`^ok: \d+ objects? \([^)]*\), [0-9.]+ (B|KiB|MiB|GiB) in \S+, [0-9.]+ (B|KiB|MiB|GiB)/s$`)

// TestCLI drives the real binary through a pipe against two real nodes:
// COPY, TAKE, a two-peer SYNC, already present, PING, STAT, LIST, a
// missing object, parse errors and the client's limits.
func TestCLI(t *testing.T) {
	a, b := testutil.StartNode(t, "node-a", "64MiB"), testutil.StartNode(t, "node-b", "64MiB")
	ctx := context.Background()
	sa, sb := testutil.StoreClient(t, a.Socket), testutil.StoreClient(t, b.Socket)
	var ids []stream.ObjectID
	for i, size := range []int{4 << 20, 100, 1000, 10, 20} {
		id, err := sb.Put(ctx, testutil.Pattern(size, byte(i)), []byte("meta"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	// COPY: the objects arrive in A, B keeps them.
	out, errs, code := cli(t, a.Addr, "COPY "+b.Addr+" "+joinIDs(ids[0], ids[1])+"\n")
	line := strings.TrimSuffix(out, "\n")
	if code != 0 || errs != "" || !okTransfer.MatchString(line) || !strings.HasPrefix(line, "ok: 2 objects (2 copied, 0 already present), 4.00 MiB in ") {
		t.Fatalf("COPY: exit %d, out %q, err %q", code, out, errs)
	}
	for _, id := range ids[:2] {
		if !contains(t, sa, id) || !contains(t, sb, id) {
			t.Fatalf("after COPY: %s in A %v, in B %v", id, contains(t, sa, id), contains(t, sb, id))
		}
	}
	o, err := sa.GetOne(ctx, ids[0], time.Second)
	if err != nil || !bytes.Equal(o.Data, testutil.Pattern(4<<20, 0)) || string(o.Metadata) != "meta" {
		t.Fatalf("copied object differs (%v)", err)
	}
	sa.Release(ctx, ids[0])

	// TAKE (keyword in lower case): gone from B.
	out, _, code = cli(t, a.Addr, "take "+b.Addr+" "+ids[2].String()+"\n")
	if code != 0 || !strings.HasPrefix(out, "ok: 1 object (1 taken, 0 already present), 1004 B in ") {
		t.Fatalf("TAKE: exit %d, out %q", code, out)
	}
	if !contains(t, sa, ids[2]) || contains(t, sb, ids[2]) {
		t.Fatalf("after TAKE: in A %v, in B %v", contains(t, sa, ids[2]), contains(t, sb, ids[2]))
	}

	// SYNC with two peer requests, one object already present; several
	// commands in one run, with comments and blank lines.
	input := fmt.Sprintf("# two peer requests\n\nSYNC COPY %s %s %s ; TAKE %s %s\nPING\nSTAT\nLIST\n",
		b.Addr, ids[3], ids[0], b.Addr, ids[4])
	out, errs, code = cli(t, a.Addr, input)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || errs != "" || len(lines) < 4 {
		t.Fatalf("SYNC: exit %d, out %q, err %q", code, out, errs)
	}
	if !strings.HasPrefix(lines[0], "ok: 3 objects (1 copied, 1 taken, 1 already present), ") || !okTransfer.MatchString(lines[0]) {
		t.Errorf("SYNC line %q", lines[0])
	}
	if !regexp.MustCompile(`^ok: pong from node-a in \S+, store up for \S+$`).MatchString(lines[1]) {
		t.Errorf("PING line %q", lines[1])
	}
	if !regexp.MustCompile(`^ok: node node-a \(version \S+, up \S+, \d+ connections?\), store up for \S+, [0-9.]+ MiB of 64.0 MiB used \([0-9.]+%\), 5 objects \(5 sealed\)$`).MatchString(lines[2]) {
		t.Errorf("STAT line %q", lines[2])
	}
	if lines[3] != "ok: 5 objects, 4.00 MiB" || len(lines) != 9 {
		t.Errorf("LIST: %q", lines[3:])
	}
	for _, id := range ids {
		if !strings.Contains(out, "  "+id.String()+" sealed, ") {
			t.Errorf("LIST does not show %s", id)
		}
		if !contains(t, sa, id) {
			t.Errorf("%s not in A after SYNC", id)
		}
	}
	if contains(t, sb, ids[4]) {
		t.Error("SYNC TAKE left the object in B")
	}

	// A missing object: an error line, one line for the object, status 1;
	// the other object of the request still arrives.
	missing := stream.ObjectID{0xde, 0xad}
	present, err := sb.Put(ctx, []byte("still here"), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _, code = cli(t, a.Addr, fmt.Sprintf("COPY %s %s %s\nPING\n", b.Addr, present, missing))
	want := fmt.Sprintf("error: 1 of 2 objects failed: object %s from %s: not found\n  %s not found: from %s\nok: pong from node-a in ", missing, b.Addr, missing, b.Addr)
	if code != 1 || !strings.HasPrefix(out, want) {
		t.Errorf("missing object: exit %d, out %q, want %q...", code, out, want)
	}
	if !contains(t, sa, present) {
		t.Error("the present object of a partly failed COPY did not arrive")
	}

	// A peer that is not there: every object fails with the peer's cause.
	dead := "127.0.0.1:1"
	out, _, code = cli(t, a.Addr, "COPY "+dead+" "+joinIDs(missing)+"\n")
	if code != 1 || !strings.HasPrefix(out, "error: 1 of 1 object failed: ") || !strings.Contains(out, "\n  "+missing.String()+" peer unreachable: from "+dead+": ") {
		t.Errorf("dead peer: exit %d, out %q", code, out)
	}

	// Parse errors: an error line each, status 1, nothing sent (the
	// server sees nothing: A's store is unchanged).
	before := storeObjects(t, sa)
	out, _, code = cli(t, a.Addr, "COPY ::1:2022 "+missing.String()+"\nCOPY "+missing.String()+"\nFETCH x\nCOPY "+b.Addr+" 12345\n")
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 1 || len(lines) != 4 {
		t.Fatalf("parse errors: exit %d, out %q", code, out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "error: ") {
			t.Errorf("parse error line %q", l)
		}
	}
	if !strings.Contains(lines[0], "[::1]:2022") {
		t.Errorf("IPv6 hint missing: %q", lines[0])
	}

	// The client library's limits, with its messages, before any request.
	tooMany := make([]string, stream.MaxPeerRequests+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("COPY %s %s", b.Addr, stream.ObjectID{0xab, byte(i >> 8), byte(i)})
	}
	input = strings.Join([]string{
		"COPY " + b.Addr,
		"COPY " + b.Addr + " " + joinIDs(present, missing, present),
		"SYNC COPY " + b.Addr + " " + joinIDs(present) + " ; TAKE " + b.Addr + " " + joinIDs(present),
		"SYNC " + strings.Join(tooMany, " ; "),
		"COPY " + b.Addr + " " + joinIDs(seqIDs(0xee, stream.MaxObjectsPerPeerRequest+1)...),
	}, "\n") + "\n"
	out, _, code = cli(t, a.Addr, input)
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	wants := []string{
		"error: SYNC rejected: peer request 1 (COPY " + b.Addr + "): at least one object must be requested",
		"error: SYNC rejected: peer request 1 (COPY " + b.Addr + "): object " + present.String() + " is requested more than once",
		"error: SYNC rejected: peer request 2 (TAKE " + b.Addr + "): object " + present.String() + " is requested more than once",
		"error: SYNC rejected: SYNC has 1025 peer requests; at most 1024 are allowed",
		"error: SYNC rejected: peer request 1 (COPY " + b.Addr + "): 65537 objects requested; at most 65536 are allowed",
	}
	if code != 1 || len(lines) != len(wants) {
		t.Fatalf("limits: exit %d, out %q", code, out)
	}
	for i, w := range wants {
		if lines[i] != w {
			t.Errorf("limit line %d = %q, want %q", i+1, lines[i], w)
		}
	}
	if after := storeObjects(t, sa); after != before {
		t.Errorf("rejected commands changed A's store: %d objects, then %d", before, after)
	}
}

func storeObjects(t *testing.T, c *store.Client) uint64 {
	t.Helper()
	st, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Objects
}

func seqIDs(tag byte, n int) []stream.ObjectID {
	ids := make([]stream.ObjectID, n)
	for i := range ids {
		ids[i][0], ids[i][1] = tag, 0x5e
		ids[i][17], ids[i][18], ids[i][19] = byte(i>>16), byte(i>>8), byte(i)
	}
	return ids
}

// TestCLIIPv6Peer copies from a stream server on [::1].
func TestCLIIPv6Peer(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	a := testutil.StartNode(t, "node-a", "16MiB")
	bsock, _ := testutil.StartStoreProcess(t, "16MiB")
	_, baddr := testutil.StartStreamServer(t, "node-b6", bsock, "::1")
	id, err := testutil.StoreClient(t, bsock).Put(context.Background(), []byte("over IPv6"), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _, code := cli(t, a.Addr, "COPY "+baddr+" "+id.String()+"\n")
	if code != 0 || !strings.HasPrefix(out, "ok: 1 object (1 copied, 0 already present), 9 B in ") {
		t.Fatalf("exit %d, out %q", code, out)
	}
	if !contains(t, testutil.StoreClient(t, a.Socket), id) {
		t.Fatal("object not in A")
	}
	if !strings.HasPrefix(baddr, "[::1]:") {
		t.Fatalf("address %s", baddr)
	}
}

// TAKE of three 6 MB objects into a 16 MiB store: the CLI reports the one
// that did not fit as refused with store full (exit 1), not "3 taken", and
// both stores together still hold all three: the refused one at the source.
func TestCLITakeIntoASmallStore(t *testing.T) {
	const size = 6_000_000
	a, b := testutil.StartNode(t, "node-a", "16MiB"), testutil.StartNode(t, "node-b", "32MiB")
	sa, sb := testutil.StoreClient(t, a.Socket), testutil.StoreClient(t, b.Socket)
	var ids []stream.ObjectID
	for i := range 3 {
		id, err := sb.Put(context.Background(), testutil.Pattern(size, byte(i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	out, _, code := cli(t, a.Addr, "TAKE "+b.Addr+" "+joinIDs(ids...)+"\n")
	if code != 1 || !strings.HasPrefix(out, "error: 1 of 3 objects failed: ") || strings.Count(out, " store full: from "+b.Addr+": ") != 1 ||
		!strings.Contains(out, "stays at the source") {
		t.Fatalf("TAKE: exit %d, out %q", code, out)
	}
	for _, id := range ids {
		inA, inB := contains(t, sa, id), contains(t, sb, id)
		if inA == inB {
			t.Errorf("object %s: in A %v, in B %v; want exactly one", id, inA, inB)
		}
		if inB && !strings.Contains(out, "  "+id.String()+" store full: ") {
			t.Errorf("object %s stayed in B but is not reported refused: %q", id, out)
		}
	}
}

// TestCLIMaxObjects sends one COPY line of 65,536 ids (2.7 MB): the line is
// read whole and every object arrives.
func TestCLIMaxObjects(t *testing.T) {
	a, b := testutil.StartNode(t, "node-a", "64MiB"), testutil.StartNode(t, "node-b", "64MiB")
	ids := seqIDs(0x42, stream.MaxObjectsPerPeerRequest)
	start := time.Now()
	const workers = 4
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		c := testutil.StoreClient(t, b.Socket)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += workers {
				data := []byte{byte(i), byte(i >> 8), byte(i >> 16), 1, 2, 3, 4, 5}
				if err := c.CreateAndSeal(context.Background(), ids[i], data, nil); err != nil {
					errc <- fmt.Errorf("object %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("put %d objects of 8 bytes in %s", len(ids), time.Since(start).Round(time.Millisecond))

	line := "COPY " + b.Addr + " " + joinIDs(ids...) + "\n"
	if len(line) < 2_600_000 {
		t.Fatalf("line of %d bytes", len(line))
	}
	start = time.Now()
	out, errs, code := cli(t, a.Addr, line)
	t.Logf("CLI COPY of %d objects (%d-byte line): %s; %q", len(ids), len(line), time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	if code != 0 || errs != "" || !strings.HasPrefix(out, "ok: 65536 objects (65536 copied, 0 already present), 512 KiB in ") {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	if n := storeObjects(t, testutil.StoreClient(t, a.Socket)); n != uint64(len(ids)) {
		t.Fatalf("A has %d objects", n)
	}
}

// TestCLIStart: a server that is not there is one sentence and status 1;
// -V and -h.
func TestCLIStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out, errs, code := cli(t, addr, "PING\n")
	if code != 1 || out != "" || strings.Count(errs, "\n") != 1 ||
		!strings.HasPrefix(errs, "plasma-stream-cli: cannot connect to the Plasma Stream server at "+addr+" (is plasma-stream-server running there?): ") {
		t.Errorf("no server: exit %d, out %q, err %q", code, out, errs)
	}
	out, _, code = cli(t, "", "", "-V")
	if code != 0 || !strings.HasPrefix(out, "plasma-stream-cli ") {
		t.Errorf("-V: exit %d, %q", code, out)
	}
	out, _, code = cli(t, "", "", "-h")
	for _, want := range []string{"A simple CLI client for Plasma Stream server", "-a, --address", "-h, --help", "-V, --version", "COPY <peer> <oid>..."} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("-h: exit %d, missing %q in %q", code, want, out)
		}
	}
	_, errs, code = cli(t, "", "", "--bogus")
	if code != 1 || !strings.HasPrefix(errs, "plasma-stream-cli: unknown flag: --bogus") {
		t.Errorf("bad flag: exit %d, %q", code, errs)
	}
}
