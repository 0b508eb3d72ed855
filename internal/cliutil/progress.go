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
	line  int // width of the text line drawn while the total is unknown
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
	if total <= 0 && p.bar == nil {
		// The total is not known yet: a line of text (the library's
		// spinner would draw from a goroutine of its own).
		desc := p.describe(done, 0, what, elapsed)
		fmt.Fprintf(p.w, "\r%-*s", p.line, desc)
		p.line = max(p.line, len(desc))
		return
	}
	// The bar never reaches its end before Done (the library would clear
	// it for good).
	total = max(total, done+1)
	if p.bar == nil {
		p.clearLine()
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionClearOnFinish(),
		)
	}
	if total != p.bar.GetMax64() {
		p.bar.ChangeMax64(total)
	}
	p.bar.Set64(done) // before Describe, which draws
	p.bar.Describe(p.describe(done, total, what, elapsed))
}

// describe is the text beside the bar.
func (p *Progress) describe(done, total int64, what string, elapsed time.Duration) string {
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
	return desc
}

// clearLine blanks the text line, if one was drawn.
func (p *Progress) clearLine() {
	if p.line > 0 {
		fmt.Fprintf(p.w, "\r%*s\r", p.line, "")
		p.line = 0
	}
}

// Done clears the bar, if one was drawn.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.clearLine()
	if p.bar != nil {
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
