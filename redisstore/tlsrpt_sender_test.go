package redisstore_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// anyRUA is a resolver under which every domain publishes a TLSRPT record
// with one rua address, tlsrpt@<domain>.
type anyRUA struct{}

func (anyRUA) LookupTXT(_ context.Context, name string) ([]string, adns.Result, error) {
	domain, ok := strings.CutPrefix(strings.TrimSuffix(name, "."), "_smtp._tls.")
	if !ok {
		return nil, adns.Result{}, &adns.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return []string{"v=TLSRPTv1; rua=mailto:tlsrpt@" + domain}, adns.Result{}, nil
}

// mailSender returns a Sender that mails each report to its policy domain
// through submit, which is given the report the message carries, and whose
// error is Submit's.
func mailSender(t *testing.T, submit func(ctx context.Context, r *tlsrpt.Report) error) *tlsrpt.Sender {
	t.Helper()
	s, err := tlsrpt.NewSender(tlsrpt.SenderOptions{
		Resolver: anyRUA{},
		Submit: func(ctx context.Context, msg *tlsrpt.Message) error {
			r, err := messageReport(msg.Data)
			if err != nil {
				t.Errorf("the report message: %v", err)
				return err
			}
			return submit(ctx, r)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// messageReport returns the report that a report message (RFC 8460 5.3)
// carries, in its application/tlsrpt+gzip part.
func messageReport(data []byte) (*tlsrpt.Report, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, err
		}
		if part.Header.Get("Content-Type") != "application/tlsrpt+gzip" {
			continue
		}
		zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, part))
		if err != nil {
			return nil, err
		}
		js, err := io.ReadAll(zr)
		if err != nil {
			return nil, err
		}
		var r tlsrpt.Report
		if err := json.Unmarshal(js, &r); err != nil {
			return nil, errors.Join(errors.New("the report's JSON"), err)
		}
		return &r, nil
	}
}
