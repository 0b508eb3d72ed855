package streamcli

import (
	"strings"
	"testing"

	"github.com/plasmastream/plasmastream/stream"
)

const (
	id1 = "0102030405060708090a0b0c0d0e0f1011121314"
	id2 = "a102030405060708090a0b0c0d0e0f1011121314"
	id3 = "B102030405060708090A0B0C0D0E0F1011121314" // upper-case hex is fine
)

func oid(t *testing.T, s string) stream.ObjectID {
	t.Helper()
	id, err := stream.ParseObjectID(strings.ToLower(s))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestParse(t *testing.T) {
	type peer struct {
		kind stream.Kind
		from string
		ids  []string
	}
	tests := []struct {
		line  string
		op    Op
		name  string
		peers []peer
	}{
		{"", OpNone, "", nil},
		{"   \t ", OpNone, "", nil},
		{"# a comment", OpNone, "", nil},
		{"  # indented comment", OpNone, "", nil},
		{"COPY 127.0.0.1:2022 " + id1, OpSync, "COPY", []peer{{stream.Copy, "127.0.0.1:2022", []string{id1}}}},
		{"copy 127.0.0.1:2022 " + id1 + " " + id2, OpSync, "COPY", []peer{{stream.Copy, "127.0.0.1:2022", []string{id1, id2}}}},
		{"Copy\t127.0.0.1:2022\t" + id1 + "\r", OpSync, "COPY", []peer{{stream.Copy, "127.0.0.1:2022", []string{id1}}}},
		{"tAkE node-b:2021 " + id3, OpSync, "TAKE", []peer{{stream.Take, "node-b:2021", []string{id3}}}},
		{"TAKE [::1]:2022 " + id1, OpSync, "TAKE", []peer{{stream.Take, "[::1]:2022", []string{id1}}}},
		{"COPY [fe80::1%eth0]:2022 " + id1, OpSync, "COPY", []peer{{stream.Copy, "[fe80::1%eth0]:2022", []string{id1}}}},
		{"COPY 127.0.0.1:2022 " + id1 + " # trailing comment", OpSync, "COPY", []peer{{stream.Copy, "127.0.0.1:2022", []string{id1}}}},
		// No ids: syntax is fine; the client library rejects the count.
		{"COPY 127.0.0.1:2022", OpSync, "COPY", []peer{{stream.Copy, "127.0.0.1:2022", []string{}}}},
		{"SYNC COPY 127.0.0.1:2022 " + id1, OpSync, "SYNC", []peer{{stream.Copy, "127.0.0.1:2022", []string{id1}}}},
		{"sync copy 127.0.0.1:2022 " + id1 + " ; take [::1]:2023 " + id2 + " " + id3, OpSync, "SYNC", []peer{
			{stream.Copy, "127.0.0.1:2022", []string{id1}},
			{stream.Take, "[::1]:2023", []string{id2, id3}},
		}},
		{"SYNC COPY a:1 " + id1 + ";TAKE b:2 " + id2 + ";", OpSync, "SYNC", []peer{
			{stream.Copy, "a:1", []string{id1}},
			{stream.Take, "b:2", []string{id2}},
		}},
		{"SYNC ; COPY a:1 " + id1 + " ;; copy b:2 " + id2, OpSync, "SYNC", []peer{
			{stream.Copy, "a:1", []string{id1}},
			{stream.Copy, "b:2", []string{id2}},
		}},
		{"ping", OpPing, "PING", nil},
		{"PING", OpPing, "PING", nil},
		{"Stat", OpStat, "STAT", nil},
		{"list", OpList, "LIST", nil},
		{"LS", OpList, "LIST", nil},
		{"help", OpHelp, "HELP", nil},
		{"?", OpHelp, "HELP", nil},
		{"HELP copy", OpHelp, "HELP", nil},
		{"quit", OpQuit, "QUIT", nil},
		{"EXIT", OpQuit, "QUIT", nil},
	}
	for _, tt := range tests {
		cmd, err := Parse(tt.line)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.line, err)
			continue
		}
		if cmd.Op != tt.op || cmd.Name != tt.name || len(cmd.Peers) != len(tt.peers) {
			t.Errorf("Parse(%q) = op %d %q with %d peer requests, want op %d %q with %d", tt.line, cmd.Op, cmd.Name, len(cmd.Peers), tt.op, tt.name, len(tt.peers))
			continue
		}
		for i, want := range tt.peers {
			got := cmd.Peers[i]
			if got.Kind != want.kind || got.From != want.from || len(got.Objects) != len(want.ids) {
				t.Errorf("Parse(%q) peer request %d = %v %s %d ids, want %v %s %d ids", tt.line, i+1, got.Kind, got.From, len(got.Objects), want.kind, want.from, len(want.ids))
				continue
			}
			for j, id := range want.ids {
				if got.Objects[j] != oid(t, id) {
					t.Errorf("Parse(%q) peer request %d id %d = %s, want %s", tt.line, i+1, j+1, got.Objects[j], id)
				}
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"FETCH 127.0.0.1:2022 " + id1, `unknown command "FETCH"`},
		{"COPY", "COPY needs a peer address and object ids: COPY <peer> <oid>..."},
		{"take", "TAKE needs a peer address and object ids: TAKE <peer> <oid>..."},
		{"COPY " + id1, "COPY is missing the peer address before object id " + id1},
		{"COPY " + id1 + " " + id2, "missing the peer address"},
		{"COPY ::1:2022 " + id1, `peer address "::1:2022": write an IPv6 address in brackets, as in [::1]:2022`},
		{"COPY fe80::1 " + id1, "write an IPv6 address in brackets"},
		{"COPY [127.0.0.1]:2022 " + id1, "only an IPv6 address goes in brackets"},
		{"COPY localhost " + id1, `peer address "localhost" has no port`},
		{"COPY :2022 " + id1, "has no host"},
		{"COPY host:port " + id1, `port "port" is not a number from 1 to 65535`},
		{"COPY host:0 " + id1, "is not a number from 1 to 65535"},
		{"COPY host:65536 " + id1, "is not a number from 1 to 65535"},
		{"COPY host:2022 0102", `COPY: object id 1 ("0102") has 4 characters; an object id is 40 hex digits`},
		{"COPY host:2022 " + id1 + " " + "zz02030405060708090a0b0c0d0e0f1011121314", `object id 2 ("zz02030405060708090a0b0c0d0e0f1011121314") is not hexadecimal`},
		{"COPY host:2022 " + id1 + "00", "has 42 characters"},
		{"COPY a:1 " + id1 + " ; TAKE b:2 " + id2, "';' separates peer requests only in a SYNC"},
		{"SYNC", "SYNC needs at least one peer request"},
		{"SYNC ; ;", "SYNC needs at least one peer request"},
		{"SYNC 127.0.0.1:2022 " + id1, `SYNC peer request 1 must start with COPY or TAKE, not "127.0.0.1:2022"`},
		{"SYNC COPY a:1 " + id1 + " ; MOVE b:2 " + id2, `SYNC peer request 2 must start with COPY or TAKE, not "MOVE"`},
		{"SYNC COPY a:1 " + id1 + " ; TAKE " + id2, "SYNC peer request 2 (TAKE) is missing the peer address"},
		{"SYNC COPY a:1 " + id1 + " ; TAKE ::1:2 " + id2, "SYNC peer request 2 (TAKE): peer address \"::1:2\": write an IPv6 address in brackets"},
		{"SYNC COPY a:1 " + id1 + " ; TAKE b:2 xyz", "SYNC peer request 2 (TAKE): object id 1 (\"xyz\") has 3 characters"},
		{"PING now", `PING takes no arguments, got "now"`},
		{"quit please", "QUIT takes no arguments"},
		{"COPY a:1 " + strings.Repeat("f", 100), `("fffffffffffffffffffffffffffffffffffffffffffffffffffffffff...") has 100 characters`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.line)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error with %q", tt.line, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", tt.line, err, tt.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) error spans lines: %q", tt.line, err)
		}
	}
}

// TestParseMaxLine parses a COPY of 65,536 ids, a 2.7 MB line.
func TestParseMaxLine(t *testing.T) {
	line := maxCopyLine("127.0.0.1:2022", idsFrom(0, stream.MaxObjectsPerPeerRequest))
	if len(line) < 2_600_000 {
		t.Fatalf("line is %d bytes", len(line))
	}
	cmd, err := Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cmd.Peers[0].Objects); n != stream.MaxObjectsPerPeerRequest {
		t.Fatalf("%d ids parsed", n)
	}
}

// idsFrom returns n distinct ids numbered from first.
func idsFrom(first, n int) []stream.ObjectID {
	ids := make([]stream.ObjectID, n)
	for i := range ids {
		v := uint32(first + i)
		ids[i][0], ids[i][1], ids[i][2], ids[i][3] = 0xc1, 0x1e, 0x57, 0x00
		ids[i][16], ids[i][17], ids[i][18], ids[i][19] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	return ids
}

func maxCopyLine(peer string, ids []stream.ObjectID) string {
	var b strings.Builder
	b.Grow(len(ids)*41 + 64)
	b.WriteString("COPY ")
	b.WriteString(peer)
	for _, id := range ids {
		b.WriteByte(' ')
		b.WriteString(id.String())
	}
	return b.String()
}
