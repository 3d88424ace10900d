package redisstore_test

import (
	"context"
	"crypto/tls"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/mjl-/adns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// Every MTA of a fleet runs this, pointed at the same Redis. It is not run
// as a test: it needs the fleet's Redis.
func ExampleNew() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		// One address for a single server; several for a Cluster; with
		// MasterName set, the addresses are Sentinels.
		Addrs:     []string{"redis.internal:6379"},
		Password:  os.Getenv("REDIS_PASSWORD"),
		TLSConfig: &tls.Config{ServerName: "redis.internal", MinVersion: tls.VersionTLS12},
		// Let contexts bound every command, and give up on a Redis that
		// does not answer quickly: mail does not wait for it.
		ContextTimeoutEnabled: true,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           200 * time.Millisecond,
		WriteTimeout:          200 * time.Millisecond,
	})
	defer rdb.Close()

	store := redisstore.New(rdb, redisstore.Options{Prefix: "mtasts:", Logger: slog.Default()})
	if err := store.RegisterMetrics(prometheus.DefaultRegisterer); err != nil {
		log.Fatal(err)
	}
	c, err := cache.New(cache.Options{Resolver: &adns.Resolver{}, Store: store})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	go c.Run(context.Background())

	domain, err := mtasts.ParseDomain("example.com")
	if err != nil {
		log.Fatal(err)
	}
	r := c.Get(context.Background(), domain)
	log.Printf("policy for %s: %v (from the network: %v)", domain, r.Policy, r.Fresh)
}
