package tlsrpt

// The in-memory store and outbox, which a nil RecorderOptions.Store and a
// nil ReporterOptions.Outbox mean, for the tests of package tlsrpt_test.
var (
	NewMemoryStore  = newMemoryStore
	NewMemoryOutbox = newMemoryOutbox
)

// MemoryOutbox is the in-memory outbox, for tests that wrap it.
type MemoryOutbox = memoryOutbox
