package cliutil

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// ProgressDelay is how long work runs before its bar appears: quick work
// draws nothing.
const ProgressDelay = 300 * time.Millisecond

// Progress draws a bar of bytes done on a terminal, with a description
// and the rate, once the work has run for its delay; it is cleared when
// the work ends. Its methods do nothing on a nil Progress, which is what
// TerminalProgress returns when stderr is not a terminal (in pipes and
// scripts the tools stay quiet).
type Progress struct {
	w     io.Writer
	start time.Time
	delay time.Duration
	bar   *progressbar.ProgressBar
}

// NewProgress draws on w after delay, whatever w is.
func NewProgress(w io.Writer, delay time.Duration) *Progress {
	return &Progress{w: w, start: time.Now(), delay: delay}
}

// TerminalProgress draws on stderr if it is a terminal, else returns
// nil. PLASMA_PROGRESS_DELAY (a duration) overrides the delay.
func TerminalProgress() *Progress {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	delay := ProgressDelay
	if d, err := time.ParseDuration(os.Getenv("PLASMA_PROGRESS_DELAY")); err == nil {
		delay = d
	}
	return NewProgress(os.Stderr, delay)
}

// Update shows done of total bytes (total 0: not known yet) and what,
// a few words of description ("2/4 objects").
func (p *Progress) Update(done, total int64, what string) {
	if p == nil {
		return
	}
	elapsed := time.Since(p.start)
	if elapsed < p.delay {
		return
	}
	// A total not known yet (0) draws a spinner; the bar never reaches its
	// end before Done (the library would clear it for good).
	max64 := int64(-1)
	if total > 0 {
		total = max(total, done+1)
		max64 = total
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(max64,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionClearOnFinish(),
		)
	}
	if max64 != p.bar.GetMax64() {
		p.bar.ChangeMax64(max64)
	}
	rate := "0 B/s"
	if done > 0 {
		rate = FormatBytes(float64(done)/elapsed.Seconds()) + "/s"
	}
	desc := fmt.Sprintf("%s in %s, %s", FormatBytes(float64(done)), elapsed.Round(100*time.Millisecond), rate)
	if total > 0 {
		desc = fmt.Sprintf("%s of %s in %s, %s", FormatBytes(float64(done)), FormatBytes(float64(total)), elapsed.Round(100*time.Millisecond), rate)
	}
	if what != "" {
		desc = what + ", " + desc
	}
	p.bar.Set64(done) // before Describe, which draws
	p.bar.Describe(desc)
}

// Done clears the bar, if one was drawn.
func (p *Progress) Done() {
	if p != nil && p.bar != nil {
		p.bar.Clear()
		p.bar.Exit()
	}
}

// Reader counts the bytes read through it into p, of total.
func (p *Progress) Reader(r io.Reader, total int64, what string) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p, total: total, what: what}
}

type progressReader struct {
	r     io.Reader
	p     *Progress
	n     int64
	total int64
	what  string
	last  time.Time
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	if now := time.Now(); now.Sub(r.last) >= 100*time.Millisecond || err != nil {
		r.last = now
		r.p.Update(r.n, r.total, r.what)
	}
	return n, err
}
