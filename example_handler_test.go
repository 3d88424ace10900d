package mtasts_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/mtasts-go/mtasts"
)

// A web server for mta-sts.example.com serves its policy with PolicyHandler,
// mounted at the well-known path (or at / of its own server).
func ExamplePolicyHandler() {
	policy, err := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle(mtasts.WellKnownPath, mtasts.PolicyHandler(policy))
	// In production: http.ListenAndServeTLS(":443", certFile, keyFile, mux)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "https://mta-sts.example.com/.well-known/mta-sts.txt", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))
	fmt.Printf("%q\n", body)
	// Output:
	// 200 text/plain; charset=utf-8 no-store
	// "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"
}
