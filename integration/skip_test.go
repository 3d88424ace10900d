package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingBinary checks what a missing server program does to a test:
// a skip naming the Debian package by default, a failure naming it with
// MTASTS_INTEGRATION=1. It runs the test binary again for the helper below.
func TestMissingBinary(t *testing.T) {
	if os.Getenv("MTASTS_MISSING_HELPER") == "1" {
		binary(t, "mtasts-no-such-server", "mtasts-no-such-package")
		t.Fatal("binary returned for a program that does not exist")
	}
	for _, tc := range []struct {
		integration string
		fail        bool
		want        string
	}{
		{"", false, "--- SKIP: TestMissingBinary"},
		{"1", true, "--- FAIL: TestMissingBinary"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinary$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "MTASTS_MISSING_HELPER=1", "MTASTS_INTEGRATION="+tc.integration)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fail || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "apt-get install mtasts-no-such-package") {
			t.Errorf("MTASTS_INTEGRATION=%q: %v, output:\n%s\nwant %q and the package to install", tc.integration, err, out, tc.want)
		}
	}
}
