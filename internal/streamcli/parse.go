package streamcli

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/plasmastream/plasmastream/stream"
)

// Op is what a command line asks for.
type Op int

const (
	OpNone Op = iota // a blank line or a comment
	OpSync           // COPY, TAKE or SYNC: a SYNC request to the connected server
	OpPing
	OpStat
	OpList
	OpHelp
	OpQuit
)

// Command is one parsed command line.
type Command struct {
	Op    Op
	Name  string               // the keyword, upper case: COPY, TAKE, SYNC, PING, STAT, LIST, HELP, QUIT
	Peers []stream.PeerRequest // OpSync: the peer requests, in order
}

// Usage lines of the transfer commands, quoted by parse errors.
const (
	usageCopy = "COPY <peer> <oid>..."
	usageTake = "TAKE <peer> <oid>..."
	usageSync = "SYNC COPY <peer> <oid>... ; TAKE <peer> <oid>..."
)

// Parse parses one command line. Keywords are case-insensitive; words are
// separated by blanks; ';' separates the peer requests of a SYNC; '#'
// starts a comment that runs to the end of the line. A blank or comment
// line is OpNone. Parse checks syntax only (keywords, peer addresses, object
// ids): the protocol's limits (at least one and at most 65,536 objects per
// peer request, at most 1024 peer requests, unique ids) are checked by the
// stream client, before anything is sent.
func Parse(line string) (Command, error) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	// ';' is a word of its own wherever it is written.
	toks := strings.Fields(strings.ReplaceAll(line, ";", " ; "))
	if len(toks) == 0 {
		return Command{}, nil
	}
	kw := strings.ToUpper(toks[0])
	args := toks[1:]
	noArgs := func(op Op, name string) (Command, error) {
		if len(args) > 0 {
			return Command{}, fmt.Errorf("%s takes no arguments, got %q", name, strings.Join(args, " "))
		}
		return Command{Op: op, Name: name}, nil
	}
	switch kw {
	case "COPY", "TAKE":
		for _, a := range args {
			if a == ";" {
				return Command{}, fmt.Errorf("';' separates peer requests only in a SYNC: %s", usageSync)
			}
		}
		pr, err := parsePeerRequest(kw, args, 0)
		if err != nil {
			return Command{}, err
		}
		return Command{Op: OpSync, Name: kw, Peers: []stream.PeerRequest{pr}}, nil
	case "SYNC":
		return parseSync(args)
	case "PING":
		return noArgs(OpPing, "PING")
	case "STAT", "STATS":
		return noArgs(OpStat, "STAT")
	case "LIST", "LS":
		return noArgs(OpList, "LIST")
	case "HELP", "?":
		return Command{Op: OpHelp, Name: "HELP"}, nil
	case "QUIT", "EXIT":
		return noArgs(OpQuit, "QUIT")
	}
	return Command{}, fmt.Errorf("unknown command %q; the commands are COPY, TAKE, SYNC, PING, STAT, LIST, help and quit", clip(toks[0]))
}

// parseSync parses the words after SYNC: peer requests separated by ';'.
// Empty peer requests (";;", a trailing ';') are ignored.
func parseSync(args []string) (Command, error) {
	cmd := Command{Op: OpSync, Name: "SYNC"}
	start := 0
	for i := 0; i <= len(args); i++ {
		if i < len(args) && args[i] != ";" {
			continue
		}
		group := args[start:i]
		start = i + 1
		if len(group) == 0 {
			continue
		}
		n := len(cmd.Peers) + 1
		kw := strings.ToUpper(group[0])
		if kw != "COPY" && kw != "TAKE" {
			return Command{}, fmt.Errorf("SYNC peer request %d must start with COPY or TAKE, not %q: %s", n, clip(group[0]), usageSync)
		}
		pr, err := parsePeerRequest(kw, group[1:], n)
		if err != nil {
			return Command{}, err
		}
		cmd.Peers = append(cmd.Peers, pr)
	}
	if len(cmd.Peers) == 0 {
		return Command{}, fmt.Errorf("SYNC needs at least one peer request: %s", usageSync)
	}
	return cmd, nil
}

// parsePeerRequest parses "<peer> <oid>..." after COPY or TAKE; n > 0 is
// the peer request's position in a SYNC.
func parsePeerRequest(kw string, args []string, n int) (stream.PeerRequest, error) {
	where := kw
	if n > 0 {
		where = fmt.Sprintf("SYNC peer request %d (%s)", n, kw)
	}
	usage := usageCopy
	if kw == "TAKE" {
		usage = usageTake
	}
	pr := stream.PeerRequest{Kind: stream.Copy}
	if kw == "TAKE" {
		pr.Kind = stream.Take
	}
	if len(args) == 0 {
		return pr, fmt.Errorf("%s needs a peer address and object ids: %s", where, usage)
	}
	if isObjectID(args[0]) {
		return pr, fmt.Errorf("%s is missing the peer address before object id %s: %s", where, args[0], usage)
	}
	if err := checkPeer(args[0]); err != nil {
		return pr, fmt.Errorf("%s: %v", where, err)
	}
	pr.From = args[0]
	pr.Objects = make([]stream.ObjectID, len(args)-1)
	for i, a := range args[1:] {
		id, err := stream.ParseObjectID(a)
		if err != nil {
			if len(a) != 2*len(id) {
				return pr, fmt.Errorf("%s: object id %d (%q) has %d characters; an object id is 40 hex digits", where, i+1, clip(a), len(a))
			}
			return pr, fmt.Errorf("%s: object id %d (%q) is not hexadecimal; an object id is 40 hex digits", where, i+1, clip(a))
		}
		pr.Objects[i] = id
	}
	return pr, nil
}

func isObjectID(s string) bool {
	_, err := stream.ParseObjectID(s)
	return err == nil
}

// checkPeer checks that a peer address is host:port with a numeric port,
// and that an IPv6 host is written in brackets.
func checkPeer(peer string) error {
	host, port, err := net.SplitHostPort(peer)
	if err != nil {
		switch {
		case strings.Count(peer, ":") >= 2 && !strings.HasPrefix(peer, "["):
			return fmt.Errorf("peer address %q: write an IPv6 address in brackets, as in [::1]:2022", clip(peer))
		case !strings.Contains(peer, ":"):
			return fmt.Errorf("peer address %q has no port; write host:port, as in 127.0.0.1:2022", clip(peer))
		}
		return fmt.Errorf("peer address %q is not host:port (IPv6 as [::1]:2022)", clip(peer))
	}
	if host == "" {
		return fmt.Errorf("peer address %q has no host; write host:port, as in 127.0.0.1:2022", clip(peer))
	}
	if strings.HasPrefix(peer, "[") {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return fmt.Errorf("peer address %q: only an IPv6 address goes in brackets", clip(peer))
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("peer address %q: port %q is not a number from 1 to 65535", clip(peer), clip(port))
	}
	return nil
}

// clip shortens a word quoted in a message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
