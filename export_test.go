package mtasts

// Unexported helpers for the tests of package mtasts_test. Examples must not
// use them: they show on pkg.go.dev, where these names do not exist.
var (
	ResultLabel  = resultLabel
	AddressClass = addressClass
)

const MaxResponseHeaderBytes = maxResponseHeaderBytes
