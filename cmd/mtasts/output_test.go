package main

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestUseColor(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if useColor(&bytes.Buffer{}, env(nil)) {
		t.Error("colour for a buffer")
	}
	if useColor(w, env(nil)) {
		t.Error("colour for a pipe")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		// Only when the test runs on a terminal.
		defer tty.Close()
		if !useColor(tty, env(nil)) {
			t.Error("no colour for a terminal")
		}
		if useColor(tty, env(map[string]string{"NO_COLOR": "1"})) {
			t.Error("colour on a terminal with NO_COLOR set")
		}
	}
}

func TestPrinterColor(t *testing.T) {
	var plain, colored bytes.Buffer
	(&printer{w: &plain}).finding(statusFail, "MX", "not allowed")
	(&printer{w: &colored, color: true}).finding(statusFail, "MX", "not allowed")
	if plain.String() != "FAIL  MX            not allowed\n" {
		t.Errorf("plain %q", plain.String())
	}
	if !strings.Contains(colored.String(), "\x1b[31m\x1b[1mFAIL\x1b[0m") || !strings.HasSuffix(colored.String(), "MX            not allowed\n") {
		t.Errorf("coloured %q", colored.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Off a terminal, progress says nothing for quick steps and a line for a
// slow one, then every ten seconds; nothing after end.
func TestProgressPlain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		pr := &progress{w: &buf}
		pr.start("fetching quick")
		time.Sleep(2 * time.Second)
		pr.end()
		if buf.String() != "" {
			t.Fatalf("quick step printed %q", buf.String())
		}
		pr.start("fetching https://mta-sts.example.com/.well-known/mta-sts.txt")
		time.Sleep(15 * time.Second)
		synctest.Wait()
		want := "mtasts: still fetching https://mta-sts.example.com/.well-known/mta-sts.txt (3s)\n" +
			"mtasts: still fetching https://mta-sts.example.com/.well-known/mta-sts.txt (15s)\n"
		if buf.String() != want {
			t.Errorf("slow step printed %q, want %q", buf.String(), want)
		}
		pr.end()
		time.Sleep(time.Minute)
		if buf.String() != want {
			t.Errorf("printed after end: %q", buf.String())
		}
	})
}

// On a terminal, progress keeps one line up to date and clears it.
func TestProgressTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		pr := &progress{w: &buf, terminal: true}
		pr.start("looking up MX example.com")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		pr.end()
		want := "\r\x1b[K… looking up MX example.com" +
			"\r\x1b[K… looking up MX example.com (1s)" +
			"\r\x1b[K… looking up MX example.com (2s)" +
			"\r\x1b[K"
		if buf.String() != want {
			t.Errorf("printed %q, want %q", buf.String(), want)
		}
	})
}
