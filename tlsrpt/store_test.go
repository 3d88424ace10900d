package tlsrpt_test

import (
	"testing"

	"github.com/mtasts-go/mtasts/tlsrpt"
	"github.com/mtasts-go/mtasts/tlsrpt/storetest"
)

func TestMemoryStore(t *testing.T) {
	stores := map[*testing.T]*tlsrpt.MemoryStore{}
	storetest.Run(t, func(t *testing.T) tlsrpt.Store {
		// A second call shares the first's store, as recorders of one
		// process may.
		if s := stores[t]; s != nil {
			return s
		}
		s := tlsrpt.NewMemoryStore()
		stores[t] = s
		return s
	})
}

func TestFileStore(t *testing.T) {
	opened := map[*testing.T]bool{}
	storetest.Run(t, func(t *testing.T) tlsrpt.Store {
		if opened[t] {
			return nil // a directory has one owner
		}
		opened[t] = true
		s, err := tlsrpt.OpenFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
