package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// status is the outcome of one check.
type status string

const (
	statusPass status = "pass"
	statusInfo status = "info" // nothing to judge, shown for the reader
	statusWarn status = "warn"
	statusFail status = "fail"
)

// rank orders statuses from best to worst.
func (s status) rank() int {
	switch s {
	case statusWarn:
		return 2
	case statusFail:
		return 3
	case statusPass:
		return 1
	}
	return 0
}

// worse returns the worse of s and t.
func worse(s, t status) status {
	if t.rank() > s.rank() {
		return t
	}
	return s
}

// isTerminal reports whether w is a terminal (a character device), without
// leaving the standard library.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// useColor reports whether to colour output to w: only on a terminal, and
// never when NO_COLOR is set to anything (https://no-color.org).
func useColor(w io.Writer, getenv func(string) string) bool {
	return getenv("NO_COLOR") == "" && isTerminal(w) && getenv("TERM") != "dumb"
}

// printer writes aligned, optionally coloured, report lines.
type printer struct {
	w     io.Writer
	color bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
)

func (p *printer) paint(code, s string) string {
	if !p.color || s == "" {
		return s
	}
	return code + s + ansiReset
}

// tag returns the status as a fixed-width label, "PASS", "WARN", ...
func (p *printer) tag(s status) string {
	label := strings.ToUpper(string(s))
	switch s {
	case statusPass:
		return p.paint(ansiGreen, label)
	case statusWarn:
		return p.paint(ansiYellow, label)
	case statusFail:
		return p.paint(ansiRed+ansiBold, label)
	}
	return p.paint(ansiBlue, label)
}

// Column widths of report lines: "PASS  step          message".
const (
	stepWidth  = 14
	fieldWidth = 13
)

// msgIndent puts detail lines under the message of a finding.
var msgIndent = strings.Repeat(" ", len("PASS  ")+stepWidth)

// heading prints a line introducing a domain or file. The printer escapes
// all it writes with escapeText: what it shows comes from the network.
func (p *printer) heading(s string) {
	fmt.Fprintln(p.w, p.paint(ansiBold, escapeText(s)))
}

// finding prints "TAG   step  message".
func (p *printer) finding(s status, step, msg string) {
	fmt.Fprintf(p.w, "%s  %s%s\n", p.tag(s), pad(escapeText(step), stepWidth), escapeText(msg))
}

// field prints a detail line under a finding: "        key   value", then
// any further lines aligned under the first. A newline inside a line is
// escaped, like any control character: it never starts a line of its own.
func (p *printer) field(key string, lines ...string) {
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		k := ""
		if i == 0 {
			k = key
		}
		fmt.Fprintf(p.w, "%s%s%s\n", msgIndent, p.paint(ansiDim, pad(escapeText(k), fieldWidth)), escapeText(l))
	}
}

// pad left-aligns s in a column of width runes, with at least one space
// after it.
func pad(s string, width int) string {
	n := utf8.RuneCountInString(s)
	if n >= width {
		return s + " "
	}
	return s + strings.Repeat(" ", width-n)
}

// progress shows on stderr which slow network step is running, so a long
// timeout never looks like a hang. On a terminal it keeps one status line
// up to date with the elapsed time and clears it when the step ends;
// elsewhere it prints a line only for a step still running after a few
// seconds, and again every ten seconds.
type progress struct {
	w        io.Writer
	terminal bool

	mu   sync.Mutex
	stop chan struct{} // closes to end the current step's ticker
	done chan struct{} // closed when the ticker has exited
}

// start shows msg until end is called. Steps do not nest.
func (pr *progress) start(msg string) {
	if pr == nil || pr.w == nil {
		return
	}
	pr.end()
	pr.mu.Lock()
	defer pr.mu.Unlock()
	stop, done := make(chan struct{}), make(chan struct{})
	pr.stop, pr.done = stop, done
	go pr.tick(msg, stop, done)
}

func (pr *progress) tick(msg string, stop, done chan struct{}) {
	defer close(done)
	began := time.Now()
	interval := time.Second
	if !pr.terminal {
		interval = 3 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	if pr.terminal {
		fmt.Fprintf(pr.w, "\r\x1b[K… %s", msg)
	}
	next := 3 * time.Second
	for {
		select {
		case <-stop:
			if pr.terminal {
				fmt.Fprint(pr.w, "\r\x1b[K")
			}
			return
		case <-t.C:
			elapsed := time.Since(began).Round(time.Second)
			switch {
			case pr.terminal:
				fmt.Fprintf(pr.w, "\r\x1b[K… %s (%s)", msg, elapsed)
			case elapsed >= next:
				fmt.Fprintf(pr.w, "mtasts: still %s (%s)\n", msg, elapsed)
				next = elapsed + 10*time.Second
			}
		}
	}
}

// end stops showing the current step, if any, and waits for its ticker to
// exit, so nothing is written to stderr after end returns.
func (pr *progress) end() {
	if pr == nil {
		return
	}
	pr.mu.Lock()
	stop, done := pr.stop, pr.done
	pr.stop, pr.done = nil, nil
	pr.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
