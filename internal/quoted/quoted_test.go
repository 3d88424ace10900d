package quoted

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// The quoting itself is tested through the root package's TestQuote; here
// Text and Cause, which bound what a wrapped error says.
func TestText(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"abc", 10, "abc"},
		{`a"b\c`, 10, `a"b\c`}, // no quotes, so nothing to escape but controls
		{"a\x1b[2Jb", 10, `a\x1b[2Jb`},
		{strings.Repeat("x", 20), 4, `xxxx...(20 bytes)`},
	}
	for _, tc := range tests {
		if got := Text(tc.in, tc.limit); got != tc.want {
			t.Errorf("Text(%q, %d) = %s, want %s", tc.in, tc.limit, got, tc.want)
		}
	}
}

func TestCause(t *testing.T) {
	if Cause(nil) != nil {
		t.Error("Cause(nil) is not nil")
	}
	inner := &fs.PathError{Op: "open", Path: "\x1b[2J" + strings.Repeat("p", 1<<20), Err: fs.ErrNotExist}
	err := fmt.Errorf("reading: %w", Cause(inner))
	msg := err.Error()
	if len(msg) > MaxCause+100 || strings.Contains(msg, "\x1b") || !strings.Contains(msg, `\x1b[2J`) {
		t.Errorf("message of %d bytes: %.200q", len(msg), msg)
	}
	var perr *fs.PathError
	// Escaped, the text shown stays within MaxCause bytes.
	for _, msg := range []string{strings.Repeat("\x91", 10_000), strings.Repeat("a", 10_000), "a" + strings.Repeat("\x1b", 10_000)} {
		if got := Cause(errors.New(msg)).Error(); len(got) > MaxCause+32 {
			t.Errorf("Cause of %.20q...: %d bytes", msg, len(got))
		}
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &perr) || perr != inner {
		t.Errorf("the cause is not reachable through %v", err)
	}
}
