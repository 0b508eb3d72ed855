package streamcli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/chzyer/readline"

	"github.com/plasmastream/plasmastream/stream"
)

// Prompt is the terminal prompt.
const Prompt = "plasma-stream> "

// HistoryFileName is the history file, in the home directory.
const HistoryFileName = ".plasma_stream_history"

// maxHistoryLine: longer lines (thousands of ids) stay out of the history.
const maxHistoryLine = 4096

// HelpText is what help prints.
const HelpText = `Commands (keywords are case-insensitive; '#' starts a comment):
  COPY <peer> <oid>...     copy objects from the server at <peer> into the connected server's store
  TAKE <peer> <oid>...     like COPY, then the source deletes the objects (best effort)
  SYNC COPY <peer> <oid>... ; TAKE <peer> <oid>... ; ...
                           several peer requests in one SYNC, run concurrently by the server
  PING                     measure a round trip to the server
  STAT                     the server's node, version and store usage
  LIST (or LS)             every object in the server's store
  help                     this text
  quit (or exit)           leave (so does Ctrl-D)
<peer> is host:port of a plasma-stream-server (IPv6 as [::1]:2022); <oid> is 40 hex digits.
Limits: 1 to 65,536 objects per peer request, at most 1024 peer requests, every id once.
Each command prints one line starting with "ok" or "error:"; a failed transfer then
lists each failed object as "  <oid> <status>: from <peer>[: detail]".
`

// Config is one run of the CLI.
type Config struct {
	Addr string    // the server, host:port
	In   io.Reader // commands, one a line
	Out  io.Writer // results
	Err  io.Writer // the start-up error
	// Terminal: In is a terminal; read with a prompt, line editing and
	// history (readline on the process's terminal, not In).
	Terminal bool
	// Progress, when not nil, is where a progress bar is drawn.
	Progress    io.Writer
	HistoryFile string // terminal history; "" keeps it in memory
	Dial        Dialer // nil: DialStream
}

// Run connects to the server and runs commands until the input ends or a
// quit. Without a terminal it returns 1 when any command failed (and when
// the connection cannot be made at start), else 0; on a terminal it
// returns 0 after quit or Ctrl-D.
func Run(ctx context.Context, cfg Config) int {
	if cfg.Dial == nil {
		cfg.Dial = DialStream
	}
	out := bufio.NewWriterSize(cfg.Out, 64<<10)
	s := &Session{Addr: cfg.Addr, Dial: cfg.Dial, Out: out, Progress: cfg.Progress, ProgressDelay: DefaultProgressDelay}
	if err := s.Connect(ctx); err != nil {
		fmt.Fprintf(cfg.Err, "plasma-stream-cli: %s\n", connectError(cfg.Addr, err))
		return 1
	}
	defer s.Close()
	if cfg.Terminal {
		if err := runTerminal(ctx, s, out, cfg); err != nil {
			fmt.Fprintf(cfg.Err, "plasma-stream-cli: %s\n", err)
			return 1
		}
		return 0
	}
	if err := RunLines(ctx, s, cfg.In, out); err != nil {
		fmt.Fprintf(out, "error: %s\n", err)
		out.Flush()
		return 1
	}
	if s.Failed > 0 {
		return 1
	}
	return 0
}

// connectError is one sentence about a failed connection at start.
func connectError(addr string, err error) string {
	msg := strings.TrimPrefix(oneLine(err.Error()), "stream server "+addr+": ")
	var se *stream.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("the Plasma Stream server at %s refused the connection: %s", addr, msg)
	}
	return fmt.Sprintf("cannot connect to the Plasma Stream server at %s (is plasma-stream-server running there?): %s", addr, msg)
}

// RunLines runs the commands of r, one a line, writing results to out
// (flushed after each command) until r ends, a quit, or ctx is done. Lines
// may be of any length. Ctrl-C (SIGINT) during a command cancels it and
// ends the run. The error is a failure to read r, or an interruption.
func RunLines(ctx context.Context, s *Session, r io.Reader, out *bufio.Writer) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			quit, interrupted := execInterruptible(ctx, s, strings.TrimRight(line, "\r\n"))
			if ferr := out.Flush(); ferr != nil {
				return fmt.Errorf("writing results: %w", ferr)
			}
			if interrupted {
				return errors.New("interrupted")
			}
			if quit {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading commands: %w", err)
		}
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
	}
}

// execInterruptible runs one command; SIGINT (Ctrl-C) while it runs
// cancels it, and only it. Between commands SIGINT keeps its default
// effect, so that a CLI waiting for input still dies of it.
func execInterruptible(ctx context.Context, s *Session, line string) (quit, interrupted bool) {
	cctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	quit = s.Exec(cctx, line)
	return quit, cctx.Err() != nil && ctx.Err() == nil
}

func runTerminal(ctx context.Context, s *Session, out *bufio.Writer, cfg Config) error {
	rl, err := readline.NewEx(&readline.Config{
		Prompt:                 Prompt,
		HistoryFile:            cfg.HistoryFile,
		HistoryLimit:           1000,
		DisableAutoSaveHistory: true,
		HistorySearchFold:      true,
		AutoComplete:           completer{},
	})
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer rl.Close()
	fmt.Fprintf(out, "Connected to %s (node %s). Type help for the commands, quit to leave.\n", s.Addr, s.Node())
	out.Flush()
	for ctx.Err() == nil {
		line, err := rl.Readline()
		if errors.Is(err, readline.ErrInterrupt) {
			continue // Ctrl-C drops the line being typed
		}
		if err != nil { // io.EOF: Ctrl-D
			return nil
		}
		if t := strings.TrimSpace(line); t != "" && len(t) <= maxHistoryLine {
			rl.SaveHistory(t)
		}
		// Ctrl-C while a command runs cancels the command, not the CLI.
		quit, _ := execInterruptible(ctx, s, line)
		out.Flush()
		if quit {
			return nil
		}
	}
	return nil
}

// DefaultHistoryFile is ~/.plasma_stream_history, or "" (history in
// memory) without a home directory.
func DefaultHistoryFile() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, HistoryFileName)
}

// NormalizeAddr adds the default port (stream.DefaultPort) to an address without one
// ("10.0.0.5", "::1", "[::1]").
func NormalizeAddr(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if host == "" || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return addr // leave it for Connect to reject
	}
	return net.JoinHostPort(host, strconv.Itoa(stream.DefaultPort))
}

// completer completes keywords, in the case the word was started in.
type completer struct{}

var (
	firstWords = []string{"COPY", "TAKE", "SYNC", "PING", "STAT", "LIST", "HELP", "QUIT"}
	kindWords  = []string{"COPY", "TAKE"}
)

func (completer) Do(line []rune, pos int) ([][]rune, int) {
	before := string(line[:pos])
	fields := strings.Fields(strings.ReplaceAll(before, ";", " ; "))
	word := ""
	if len(before) > 0 && !strings.ContainsAny(before[len(before)-1:], " \t;") && len(fields) > 0 {
		word = fields[len(fields)-1]
		fields = fields[:len(fields)-1]
	}
	var cands []string
	switch {
	case len(fields) == 0:
		cands = firstWords
	case strings.EqualFold(fields[0], "SYNC") && (len(fields) == 1 || fields[len(fields)-1] == ";"):
		cands = kindWords
	default:
		return nil, 0
	}
	lower := word != "" && strings.ToLower(word) == word
	var out [][]rune
	for _, c := range cands {
		if lower {
			c = strings.ToLower(c)
		}
		if strings.HasPrefix(strings.ToUpper(c), strings.ToUpper(word)) {
			out = append(out, []rune(c[len(word):]+" "))
		}
	}
	return out, len([]rune(word))
}
