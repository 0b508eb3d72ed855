// Package streamcli is plasma-stream-cli, a simple CLI client for Plasma
// Stream server: it connects to one server (-a/--address, default
// 127.0.0.1:2021; port 2021 when omitted) and sends it requests, one
// command a line.
//
// # Commands
//
// Keywords are case-insensitive; '#' starts a comment; blank lines are
// skipped.
//
//	COPY <peer> <oid>...                         a SYNC with one COPY peer request
//	TAKE <peer> <oid>...                         a SYNC with one TAKE peer request
//	SYNC COPY <peer> <oid>... ; TAKE <peer> <oid>... ; ...
//	PING | STAT | LIST (LS) | help | quit (exit)
//
// A peer is host:port of a plasma-stream-server, an IPv6 host in brackets
// ([::1]:2022); an oid is 40 hex digits. A parse error (unknown keyword,
// missing peer, bad peer address, bad id) is reported without contacting
// the server; so are the protocol's limits (1 to 65,536 objects per peer
// request, at most 1024 peer requests, each id once), which the stream
// client checks before sending and whose message is shown as it is.
//
// # Output
//
// Each command prints exactly one summary line beginning "ok" or "error:"
// (help prints its text instead; quit prints nothing). These formats are
// stable:
//
//	ok: <n> objects (<c> copied, <t> taken, <p> already present[; <k> not deleted at the source]), <bytes> in <time>, <rate>
//	error: <f> of <n> objects failed: <first failure's message>
//	  <oid> <status>: from <peer>[: <detail>]
//	error: <sentence>
//	ok: pong from <node> in <time>
//	ok: node <name> (version <v>, up <uptime>, <c> connections), store <used> of <capacity> used (<pct>%), <n> objects (<s> sealed)
//	ok: <n> objects, <bytes>
//	  <oid> <state>, <d> B data, <m> B metadata[, delete pending]
//
// In the transfer line, "<c> copied" appears when the command has a COPY
// peer request and "<t> taken" when it has a TAKE one; "<n> objects" counts
// the objects now at the destination ("1 object" when one). Bytes are data
// plus metadata received, in binary units with three significant digits
// ("12.0 MiB"); the time is measured by the CLI from sending the request
// to the last reply; the rate is bytes over that time ("292 MiB/s"). After
// a transfer failure line comes one indented line per failed object, with
// its status ("not found", "peer unreachable", "store full", ...) and the
// peer. Any other failure (a limit, a lost connection, a refusal) is one
// "error: <sentence>" line. LIST prints one indented line per object after
// its summary.
//
// # Modes
//
// When standard input is a terminal the CLI shows the prompt
// "plasma-stream> " with line editing, history (~/.plasma_stream_history,
// lines up to 4 KiB) and keyword completion, and draws a progress bar on
// standard error for a transfer that runs longer than 300 ms, cleared
// before the summary line. Ctrl-C cancels the command under way (or the
// line being typed); quit, exit or Ctrl-D leave with status 0.
//
// Otherwise it reads commands from standard input, lines of any length (a
// COPY of 65,536 ids is a 2.7 MB line), prints the same lines and no
// prompt or bar, and exits with status 1 if any command failed, 0
// otherwise; Ctrl-C cancels the command under way and ends the run. A
// connection that cannot be made at start is one sentence on
// standard error and status 1. A command that breaks the connection fails,
// and the next one reconnects.
package streamcli
