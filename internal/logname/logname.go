// Package logname gives the form of a domain name in this module's log
// records, so that the root package, cache and tlsrpt log names alike.
package logname

// Domain returns the name for logs of a domain with the A-label form ascii
// and the Unicode form unicode (empty when the name is not
// internationalized): "unicode/ascii" for an internationalized name, so
// both forms can be searched for, else ascii.
func Domain(ascii, unicode string) string {
	if unicode == "" || unicode == ascii {
		return ascii
	}
	return unicode + "/" + ascii
}
