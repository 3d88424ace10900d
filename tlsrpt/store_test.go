package tlsrpt_test

import (
	"io"
	"testing"

	"github.com/mtasts-go/mtasts/tlsrpt"
	"github.com/mtasts-go/mtasts/tlsrpt/storetest"
)

func TestMemoryStore(t *testing.T) {
	opened := map[*testing.T]bool{}
	storetest.Run(t, func(t *testing.T) tlsrpt.Store {
		if opened[t] {
			return nil // one memory store is one claimant
		}
		opened[t] = true
		return tlsrpt.NewMemoryStore()
	}, nil)
}

func TestFileStore(t *testing.T) {
	opened := map[*testing.T]bool{}
	dirs := map[tlsrpt.Store]string{}
	open := func(t *testing.T, dir string) tlsrpt.Store {
		s, err := tlsrpt.OpenFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.(io.Closer).Close() })
		dirs[s] = dir
		return s
	}
	storetest.Run(t, func(t *testing.T) tlsrpt.Store {
		if opened[t] {
			return nil // a directory has one owner
		}
		opened[t] = true
		return open(t, t.TempDir())
	}, func(t *testing.T, s tlsrpt.Store) tlsrpt.Store {
		// Close releases nothing: it only closes the files, as a crash
		// would.
		s.(io.Closer).Close()
		return open(t, dirs[s])
	})
}
