package tlsrpt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/mtasts-go/mtasts/internal/quoted"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// dkimKey is a test signing key and its key record.
type dkimKey struct {
	priv   ed25519.PrivateKey
	record string
}

// newDKIMKey makes an Ed25519 key (RFC 8463) with a key record of service
// types services ("" for no s= tag).
func newDKIMKey(t testing.TB, services string) dkimKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := "v=DKIM1; k=ed25519; "
	if services != "" {
		rec += "s=" + services + "; "
	}
	return dkimKey{priv, rec + "p=" + base64.StdEncoding.EncodeToString(pub)}
}

// composedReport composes the message of RFC 8460 5.3 for the report of
// Appendix B, from company-x.example, its reporting domain.
func composedReport(t testing.TB) ([]byte, *Report) {
	t.Helper()
	data, err := os.ReadFile("testdata/rfc8460-appendix-b.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildPayload(r)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ComposeMessage(p, "tlsrpt@company-x.example", []string{"tlsrpt@company-y.example"}, time.Date(2016, 4, 2, 1, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Data, r
}

// signDKIM signs msg with go-msgauth as domain's selector.
func signDKIM(t testing.TB, msg []byte, key dkimKey, domain, selector string) []byte {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{
		Domain:     domain,
		Selector:   selector,
		Signer:     key.priv,
		HeaderKeys: []string{"From", "To", "Subject", "Date", HeaderReportDomain, HeaderReportSubmitter},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// signDKIMBodyLength signs msg as signDKIM does but with the l= tag, over
// the first n bytes of the body, as a sender using l= would. go-msgauth does
// not sign with l=, so this follows RFC 6376 3.4.3 ("simple"
// canonicalisation), 3.7 and RFC 8463 by hand.
func signDKIMBodyLength(t testing.TB, msg []byte, key dkimKey, domain, selector string, n int) []byte {
	t.Helper()
	head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		t.Fatal("no end of header")
	}
	head = append(head, "\r\n"...)
	// RFC 6376 3.4.3: trailing empty lines are removed.
	for bytes.HasSuffix(body, []byte("\r\n\r\n")) {
		body = body[:len(body)-2]
	}
	bh := sha256.Sum256(body[:n])
	sig := "DKIM-Signature: v=1; a=ed25519-sha256; c=simple/simple; d=" + domain + "; s=" + selector +
		"; h=From; l=" + strconv.Itoa(n) + "; bh=" + base64.StdEncoding.EncodeToString(bh[:]) + "; b="
	var from string
	for _, line := range strings.Split(string(head), "\r\n") {
		if strings.HasPrefix(line, "From:") {
			from = line + "\r\n"
		}
	}
	h := sha256.Sum256([]byte(from + sig))
	b := base64.StdEncoding.EncodeToString(ed25519.Sign(key.priv, h[:]))
	return append([]byte(sig+b+"\r\n"), msg...)
}

func TestVerifyDKIM(t *testing.T) {
	msg, report := composedReport(t)
	key := newDKIMKey(t, "tlsrpt")
	res := mtaststest.NewResolver()
	res.SetTXT("sel._domainkey.company-x.example", key.record)
	res.SetTXT("sel._domainkey.attacker.example", key.record)
	anyKey := newDKIMKey(t, "")
	res.SetTXT("any._domainkey.company-x.example", anyKey.record)
	mailKey := newDKIMKey(t, "email")
	res.SetTXT("mail._domainkey.company-x.example", mailKey.record)
	ctx := context.Background()

	// The body is base64 in lines; changing one character of it keeps
	// the message well-formed but changes the report.
	signed := signDKIM(t, msg, key, "company-x.example", "sel")
	i := bytes.LastIndex(signed, []byte("H4sI")) // the gzip magic, base64
	changed := bytes.Clone(signed)
	changed[i+10] ^= 1

	// l= over the body as signed, then a part appended: the attack RFC
	// 8460 3 names ("attackers cannot append extraneous or misleading
	// data to a report").
	_, body, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	withL := signDKIMBodyLength(t, msg, key, "company-x.example", "sel", len(body)/2)

	tests := []struct {
		name string
		msg  []byte
		want []DKIMResult
	}{
		{"unsigned", msg, nil},
		{"valid", signed, []DKIMResult{{Domain: "company-x.example", Selector: "sel", Pass: true, ReportingDomain: true, Services: []string{"tlsrpt"}, ServiceTLSRPT: true}}},
		{"key without s=", signDKIM(t, msg, anyKey, "company-x.example", "any"), []DKIMResult{{Domain: "company-x.example", Selector: "any", Pass: true, ReportingDomain: true, ServiceTLSRPT: true}}},
		{"key for email only", signDKIM(t, msg, mailKey, "company-x.example", "mail"), []DKIMResult{{Domain: "company-x.example", Selector: "mail", Pass: true, ReportingDomain: true, Services: []string{"email"}}}},
		{"body changed", changed, []DKIMResult{{Domain: "company-x.example", Selector: "sel", Reason: "body hash did not verify", ReportingDomain: true, Services: []string{"tlsrpt"}, ServiceTLSRPT: true}}},
		{"other domain", signDKIM(t, msg, key, "attacker.example", "sel"), []DKIMResult{{Domain: "attacker.example", Selector: "sel", Pass: true, Services: []string{"tlsrpt"}, ServiceTLSRPT: true}}},
		{"l=", withL, []DKIMResult{{Domain: "company-x.example", Selector: "sel", Reason: "signature has l=, limiting the body it covers, which RFC 8460 3 forbids", ReportingDomain: true, BodyLength: true, Services: []string{"tlsrpt"}, ServiceTLSRPT: true}}},
		{"no key", signDKIM(t, msg, key, "company-x.example", "gone"), []DKIMResult{{Domain: "company-x.example", Selector: "gone", Reason: "no key for signature: gone._domainkey.company-x.example: lookup gone._domainkey.company-x.example.: no such host", ReportingDomain: true}}},
		{"two signatures", signDKIM(t, signDKIM(t, msg, key, "attacker.example", "sel"), key, "company-x.example", "sel"), []DKIMResult{
			{Domain: "company-x.example", Selector: "sel", Pass: true, ReportingDomain: true, Services: []string{"tlsrpt"}, ServiceTLSRPT: true},
			{Domain: "attacker.example", Selector: "sel", Pass: true, Services: []string{"tlsrpt"}, ServiceTLSRPT: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyDKIM(ctx, res, tt.msg, report)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d results %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Domain != w.Domain || g.Selector != w.Selector || g.Pass != w.Pass || g.Reason != w.Reason ||
					g.ReportingDomain != w.ReportingDomain || g.BodyLength != w.BodyLength ||
					strings.Join(g.Services, ",") != strings.Join(w.Services, ",") || g.ServiceTLSRPT != w.ServiceTLSRPT {
					t.Errorf("result %d:\n got %+v\nwant %+v", i, g, w)
				}
				if g.Valid() != (w.Pass && w.ReportingDomain) {
					t.Errorf("result %d: Valid() = %v", i, g.Valid())
				}
			}
		})
	}
}

// The reporting domain is the TLS-Report-Submitter's or the contact-info's,
// or a subdomain of the signing domain; not a parent of it.
func TestDKIMReportingDomain(t *testing.T) {
	msg, report := composedReport(t)
	key := newDKIMKey(t, "tlsrpt")
	res := mtaststest.NewResolver()
	for _, d := range []string{"example", "company-x.example", "mail.company-x.example", "submitter.example"} {
		res.SetTXT("sel._domainkey."+d, key.record)
	}
	// The submitter field names another domain than the contact-info.
	msg = bytes.Replace(msg, []byte(HeaderReportSubmitter+": company-x.example"), []byte(HeaderReportSubmitter+": submitter.example"), 1)
	for d, want := range map[string]bool{
		"company-x.example":      true, // contact-info's
		"submitter.example":      true, // TLS-Report-Submitter's
		"example":                true, // a parent of both
		"mail.company-x.example": false,
		"COMPANY-X.example":      true,
	} {
		got, err := VerifyDKIM(context.Background(), res, signDKIM(t, msg, key, d, "sel"), report)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %+v, %v", d, got, err)
		}
		if !got[0].Pass || got[0].ReportingDomain != want {
			t.Errorf("signed by %s: %+v, want pass and reporting domain %v", d, got[0], want)
		}
	}

	// The submitter field counts only when the signature covers it, and
	// is the only one.
	var b bytes.Buffer
	if err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{Domain: "submitter.example", Selector: "sel", Signer: key.priv, HeaderKeys: []string{"From"}}); err != nil {
		t.Fatal(err)
	}
	two := append([]byte(HeaderReportSubmitter+": other.example\r\n"), signDKIM(t, msg, key, "submitter.example", "sel")...)
	for name, m := range map[string][]byte{"field not signed": b.Bytes(), "two fields": two} {
		got, err := VerifyDKIM(context.Background(), res, m, report)
		if err != nil || len(got) != 1 || !got[0].Pass || got[0].ReportingDomain {
			t.Errorf("%s: %+v, %v; want pass, not the reporting domain", name, got, err)
		}
	}
}

// A signature's selector and domain are the sender's text: what is not a
// host name's labels is not looked up, and the reason quotes it escaped.
func TestDKIMHostileSelector(t *testing.T) {
	msg, report := composedReport(t)
	key := newDKIMKey(t, "tlsrpt")
	res := mtaststest.NewResolver()
	signed := signDKIM(t, msg, key, "company-x.example", "sel")
	bad := bytes.Replace(signed, []byte("s=sel;"), []byte("s=a/b\x1b[2J;"), 1)
	got, err := VerifyDKIM(context.Background(), res, bad, report)
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v, %v", got, err)
	}
	if got[0].Pass || !strings.Contains(got[0].Reason, `has the character '/'`) || strings.ContainsRune(got[0].Reason, 0x1b) || strings.ContainsRune(got[0].Selector, 0x1b) {
		t.Errorf("%+v", got[0])
	}
	if n := res.Lookups("a/b\x1b[2J._domainkey.company-x.example"); n != 0 {
		t.Errorf("%d lookups of the hostile name", n)
	}
}

// Hostile messages and key records never panic VerifyDKIM.
func FuzzVerifyDKIM(f *testing.F) {
	msg, report := composedReport(f)
	key := newDKIMKey(f, "tlsrpt")
	f.Add(signDKIM(f, msg, key, "company-x.example", "sel"), key.record)
	f.Add(signDKIMBodyLength(f, msg, key, "company-x.example", "sel", 10), "v=DKIM1; k=rsa; s=; p=")
	f.Add([]byte("DKIM-Signature: v=1; d=; s=;;;==\r\n\tx\r\n\r\n"), "s=tlsrpt:*:email;p=AAAA")
	f.Fuzz(func(t *testing.T, message []byte, record string) {
		res := mtaststest.NewResolver()
		res.SetTXT("sel._domainkey.company-x.example", record)
		results, err := VerifyDKIM(context.Background(), res, message, report)
		if err == nil && len(results) > maxDKIMSignatures {
			t.Errorf("%d results", len(results))
		}
		for _, r := range results {
			if len(r.Domain) > 4*quoted.Max+32 || len(r.Reason) > 4*quoted.MaxCause {
				t.Errorf("unbounded result %+v", r)
			}
		}
	})
}
