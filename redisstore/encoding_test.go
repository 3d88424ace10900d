package redisstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// TestDecodeVersions reads values as a release may find them in a Redis that
// older and newer releases share: today's version 1, version 1 with fields a
// later release added, and values it must report instead of using.
func TestDecodeVersions(t *testing.T) {
	fetched := time.UnixMilli(1704067200000)
	tests := []struct {
		name    string
		value   string
		want    cache.Entry
		wantErr string // empty: no error
	}{
		{
			name:  "version 1",
			value: `{"v":1,"domain":"example.com","id":"20240101","policy":"version: STSv1\r\nmode: none\r\nmax_age: 60\r\n","fetched":1704067200000,"expires":1704067260000}`,
			want:  cache.Entry{Domain: "example.com", RecordID: "20240101", Policy: "version: STSv1\r\nmode: none\r\nmax_age: 60\r\n", Fetched: fetched, Expires: fetched.Add(time.Minute)},
		},
		{
			name:  "version 1 with a field added later",
			value: `{"v":1,"domain":"example.com","id":"x","policy":"p","fetched":1704067200000,"expires":1704067260000,"by":"mta7"}`,
			want:  cache.Entry{Domain: "example.com", RecordID: "x", Policy: "p", Fetched: fetched, Expires: fetched.Add(time.Minute)},
		},
		{name: "a later version", value: `{"v":2,"domain":"example.com","policy":"p"}`, wantErr: "unknown version 2"},
		{name: "no version", value: `{"domain":"example.com","policy":"p"}`, wantErr: "unknown version 0"},
		{name: "no policy", value: `{"v":1,"domain":"example.com"}`, wantErr: "without domain or policy"},
		{name: "not JSON", value: "version: STSv1\r\n", wantErr: "undecodable"},
		{name: "truncated", value: `{"v":1,"domain":"exa`, wantErr: "undecodable"},
		{name: "empty", value: "", wantErr: "undecodable"},
		{name: "a string for a time", value: `{"v":1,"domain":"example.com","policy":"p","fetched":"yesterday"}`, wantErr: "undecodable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := redisstore.Decode([]byte(tc.value))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Decode = %+v, %v; want an error saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Domain != tc.want.Domain || got.RecordID != tc.want.RecordID || got.Policy != tc.want.Policy ||
				!got.Fetched.Equal(tc.want.Fetched) || !got.Expires.Equal(tc.want.Expires) {
				t.Errorf("Decode = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzDecode checks that no value found in Redis makes Decode panic, and
// that what it accepts encodes back to a value that decodes the same.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"domain":"example.com","id":"1","policy":"version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n","fetched":1704067200000,"expires":1704153600000}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"domain":"\u00e9","policy":"\u0000","fetched":-1,"expires":9223372036854775807}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := redisstore.Decode(b)
		if err != nil {
			return
		}
		again, err := redisstore.Decode(redisstore.Encode(e))
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", e, err)
		}
		if again.Domain != e.Domain || again.RecordID != e.RecordID || again.Policy != e.Policy ||
			!again.Fetched.Equal(e.Fetched) || !again.Expires.Equal(e.Expires) {
			t.Fatalf("round trip changed %+v into %+v", e, again)
		}
	})
}
