package redisstore_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/redisstore"
)

// redisServer is a redis-server the test started on a loopback port.
type redisServer struct {
	t        testing.TB
	bin, dir string
	port     int
	password string
	cmd      *exec.Cmd

	// With TLS: the server's arguments for it, and the client's config.
	// Other arguments, e.g. for a cluster node, are in extraArgs.
	tlsArgs   []string
	extraArgs []string
	confFile  string // a configuration file, e.g. a Sentinel's
	tlsConfig *tls.Config
}

// startRedis starts redis-server, skipping the test when it is not
// installed, unless MTASTS_INTEGRATION=1 requires it.
func startRedis(t testing.TB, password string) *redisServer {
	t.Helper()
	s := newRedis(t, password)
	s.start()
	t.Cleanup(s.stop)
	return s
}

// startRedisTLS starts redis-server serving TLS only, with a certificate for
// "redis.test" from the test kit's CA.
func startRedisTLS(t testing.TB, password string) *redisServer {
	t.Helper()
	s := newRedis(t, password)
	ca := testkit.PolicyServer(t)
	now := time.Now()
	cert, err := ca.IssueCertificate(now.Add(-time.Hour), now.Add(time.Hour), "redis.test")
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		"ca.pem":   ca.CACertificatePEM(),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.tlsArgs = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port),
		"--tls-cert-file", filepath.Join(s.dir, "cert.pem"), "--tls-key-file", filepath.Join(s.dir, "key.pem"),
		"--tls-ca-cert-file", filepath.Join(s.dir, "ca.pem"), "--tls-auth-clients", "no"}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CACertificatePEM())
	s.tlsConfig = &tls.Config{RootCAs: roots, ServerName: "redis.test", MinVersion: tls.VersionTLS12}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// newRedis returns a server not yet started, on a free port, skipping the
// test when redis-server is not installed, unless MTASTS_INTEGRATION=1
// requires it.
func newRedis(t testing.TB, password string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found: install the Debian package redis-server"
		if os.Getenv("MTASTS_INTEGRATION") == "1" {
			t.Fatal(msg + "; MTASTS_INTEGRATION=1 requires it")
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return &redisServer{t: t, bin: bin, dir: t.TempDir(), port: port, password: password}
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	var args []string
	if s.confFile != "" {
		args = append(args, s.confFile) // first, as redis-server wants it
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no")
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	args = append(args, s.tlsArgs...) // a later --port wins
	args = append(args, s.extraArgs...)
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr(), Password: s.password, TLSConfig: s.tlsConfig})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server not ready:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond) // polling a starting server
	}
}

func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd = nil
}

func (s *redisServer) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), Password: s.password, TLSConfig: s.tlsConfig, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	s.t.Cleanup(func() { c.Close() })
	return c
}

const policy = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n"

func entry(domain string) cache.Entry {
	now := time.Now().Truncate(time.Millisecond)
	return cache.Entry{Domain: domain, RecordID: "1", Policy: policy, Fetched: now, Expires: now.Add(24 * time.Hour)}
}

func TestStoreLoadExpiry(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	s := redisstore.New(rdb, redisstore.Options{Prefix: "test:"})
	ctx := context.Background()

	if _, ok, err := s.Load(ctx, "example.com"); ok || err != nil {
		t.Fatalf("Load of nothing = %v, %v", ok, err)
	}
	e := entry("example.com")
	if err := s.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Load(ctx, "example.com")
	if err != nil || !ok || got.Policy != e.Policy || got.RecordID != "1" || !got.Fetched.Equal(e.Fetched) || !got.Expires.Equal(e.Expires) {
		t.Fatalf("Load = %+v, %v, %v; want %+v", got, ok, err, e)
	}
	// The key expires with the policy.
	ttl := rdb.PTTL(ctx, "test:policy:example.com").Val()
	if ttl < 23*time.Hour || ttl > 24*time.Hour {
		t.Errorf("PTTL %v, want about 24h", ttl)
	}
	if err := s.Delete(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Load(ctx, "example.com"); ok {
		t.Error("entry still there after Delete")
	}
	// An expired entry is not stored at all.
	old := entry("old.example")
	old.Expires = time.Now().Add(-time.Second)
	if err := s.Save(ctx, old); err != nil || rdb.Exists(ctx, "test:policy:old.example").Val() != 0 {
		t.Errorf("expired entry saved: %v", err)
	}
}

func TestUndecodableEntry(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	s := redisstore.New(rdb, redisstore.Options{})
	reg := prometheus.NewPedanticRegistry()
	if err := s.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range []string{"garbage", `{"v":2,"domain":"example.com","policy":"x"}`, `{"v":1,"domain":"example.org","policy":"x"}`, `{"v":1}`} {
		rdb.Set(ctx, "mtasts:policy:example.com", v, time.Hour)
		if _, ok, err := s.Load(ctx, "example.com"); ok || err == nil {
			t.Errorf("Load of %q = %v, %v; want an error", v, ok, err)
		}
	}
	if n := counter(t, reg, "mtastsgo_redisstore_errors_total"); n != 4 {
		t.Errorf("errors counted: %v, want 4", n)
	}

	// The cache treats it as absent: it fetches, and overwrites it.
	resolver, server := world(t)
	c, err := cache.New(cache.Options{Resolver: resolver, Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := c.Get(ctx, mustDomain(t, "example.com")); r.Policy == nil || !r.Fresh {
		t.Fatalf("Get = %+v; want a fresh policy", r)
	}
	if e, ok, err := s.Load(ctx, "example.com"); err != nil || !ok || e.RecordID != "1" || server.Requests("example.com") != 1 {
		t.Errorf("after Get: %+v, %v, %v", e, ok, err)
	}
}

// world publishes example.com's record and policy in the test kit's fake
// DNS and policy server.
func world(t *testing.T) (*mtaststest.Resolver, *mtaststest.PolicyServer) {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	server := testkit.PolicyServer(t)
	server.SetResponse("example.com", mtaststest.Response{Body: policy, Delay: 100 * time.Millisecond})
	t.Cleanup(server.Install())
	return resolver, server
}

func mustDomain(t testing.TB, s string) mtasts.Domain {
	d, err := mtasts.ParseDomain(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSharedAcrossCaches(t *testing.T) {
	srv := startRedis(t, "secret")
	resolver, server := world(t)
	ctx := context.Background()

	c1, err := cache.New(cache.Options{Resolver: resolver, Store: redisstore.New(srv.client(), redisstore.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if r := c1.Get(ctx, mustDomain(t, "example.com")); r.Policy == nil || !r.Fresh {
		t.Fatalf("first cache: %+v", r)
	}
	// A second MTA, with a client of its own, sees the policy without a
	// fetch.
	c2, err := cache.New(cache.Options{Resolver: resolver, Store: redisstore.New(srv.client(), redisstore.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if r := c2.Get(ctx, mustDomain(t, "example.com")); r.Policy == nil || r.Fresh || r.RecordID != "1" {
		t.Fatalf("second cache: %+v; want the stored policy", r)
	}
	if n := server.Requests("example.com"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}

	// A wrong password is an error, not a panic, and not a failed Get.
	bad := redis.NewClient(&redis.Options{Addr: srv.addr(), Password: "wrong"})
	defer bad.Close()
	if _, _, err := redisstore.New(bad, redisstore.Options{}).Load(ctx, "example.com"); err == nil {
		t.Error("Load with a wrong password did not fail")
	}
}

func TestFleetLock(t *testing.T) {
	srv := startRedis(t, "")
	resolver, server := world(t)
	ctx := context.Background()

	var caches []*cache.Cache
	for range 8 {
		c, err := cache.New(cache.Options{Resolver: resolver, Store: redisstore.New(srv.client(), redisstore.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		caches = append(caches, c)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, c := range caches {
		wg.Go(func() {
			<-start
			if r := c.Get(ctx, mustDomain(t, "example.com")); r.Policy == nil {
				t.Errorf("Get = %+v", r)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := server.Requests("example.com"); n != 1 {
		t.Errorf("%d fetches by 8 caches, want 1", n)
	}
	if n := srv.client().Exists(ctx, "mtasts:lock:example.com").Val(); n != 0 {
		t.Error("the lock was not released")
	}
}

func TestRedisDown(t *testing.T) {
	srv := startRedis(t, "")
	resolver, server := world(t)
	resolver.SetTXT("_mta-sts.example.org", "v=STSv1; id=1")
	server.SetPolicy("example.org", policy)
	ctx := context.Background()
	store := redisstore.New(srv.client(), redisstore.Options{Timeout: 100 * time.Millisecond, RetryAfter: 50 * time.Millisecond})
	reg := prometheus.NewPedanticRegistry()
	if err := store.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{Resolver: resolver, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	srv.stop()
	// Deliveries go on: the policy comes from the network, and the
	// errors are counted.
	start := time.Now()
	if r := c.Get(ctx, mustDomain(t, "example.com")); r.Policy == nil || !r.Fresh || r.Err != nil {
		t.Fatalf("Get with Redis down = %+v", r)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Get with Redis down took %v", elapsed)
	}
	if n := counter(t, reg, "mtastsgo_redisstore_errors_total"); n < 2 {
		t.Errorf("%v Redis errors counted, want load, lock and save at least", n)
	}

	// Redis comes back: the store is used again.
	srv.start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r := c.Get(ctx, mustDomain(t, "example.org")); r.Policy == nil {
			t.Fatalf("Get after restart = %+v", r)
		}
		if _, ok, _ := store.Load(ctx, "example.org"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store was not used again after Redis came back")
		}
		// A new cache each round, which fetches and saves again,
		// until the client has reconnected.
		c, err = cache.New(cache.Options{Resolver: resolver, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

func TestEncoding(t *testing.T) {
	e := entry("xn--bcher-kva.example")
	got, err := redisstore.Decode(redisstore.Encode(e))
	if err != nil || got.Domain != e.Domain || got.Policy != e.Policy || !got.Expires.Equal(e.Expires) {
		t.Errorf("Decode(Encode(e)) = %+v, %v", got, err)
	}
	// Today's format, as a future release must still read it.
	const v1 = `{"v":1,"domain":"example.com","id":"20240101","policy":"version: STSv1\r\nmode: none\r\nmax_age: 60\r\n","fetched":1704067200000,"expires":1704067260000}`
	got, err = redisstore.Decode([]byte(v1))
	if err != nil || got.RecordID != "20240101" || got.Expires.Sub(got.Fetched) != time.Minute {
		t.Errorf("Decode(v1) = %+v, %v", got, err)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range families {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
