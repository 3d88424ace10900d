package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// startCluster starts a Redis Cluster of one node that serves every slot:
// enough for a cluster client's routing, redirections aside.
func startCluster(t *testing.T) *redisServer {
	t.Helper()
	s := newRedis(t, "")
	s.extraArgs = []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}
	s.start()
	t.Cleanup(s.stop)
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.ClusterInfo(ctx).Val(), "cluster_state:ok") {
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %s", c.ClusterInfo(ctx).Val())
		}
		time.Sleep(10 * time.Millisecond) // polling for the cluster's state
	}
	return s
}

// TestCluster runs two caches of a fleet, and the lock, over a Redis Cluster
// through go-redis's universal client in cluster mode.
func TestCluster(t *testing.T) {
	srv := startCluster(t)
	resolver, server := world(t)
	ctx := context.Background()
	d := mustDomain(t, "example.com")

	var stores []*redisstore.Store
	for range 2 {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: []string{srv.addr()}, IsClusterMode: true, ContextTimeoutEnabled: true,
		})
		t.Cleanup(func() { rdb.Close() })
		if _, ok := rdb.(*redis.ClusterClient); !ok {
			t.Fatalf("universal client is a %T, want a cluster client", rdb)
		}
		stores = append(stores, redisstore.New(rdb, redisstore.Options{}))
	}
	c1, err := cache.New(cache.Options{Resolver: resolver, Store: stores[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if r := c1.Get(ctx, d); r.Policy == nil || !r.Fresh {
		t.Fatalf("first cache: %+v", r)
	}
	c2, err := cache.New(cache.Options{Resolver: resolver, Store: stores[1]})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if r := c2.Get(ctx, d); r.Policy == nil || r.Fresh {
		t.Fatalf("second cache: %+v; want the policy from the cluster", r)
	}
	if n := server.Requests("example.com"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}

	// The lock, whose release is a script, works through the cluster.
	token, held, err := stores[0].Lock(ctx, "example.org")
	if !held || err != nil {
		t.Fatalf("Lock = %v, %v", held, err)
	}
	if _, held, err := stores[1].Lock(ctx, "example.org"); held || err != nil {
		t.Errorf("second Lock = %v, %v; want not held", held, err)
	}
	if err := stores[0].Unlock(ctx, "example.org", token); err != nil {
		t.Fatal(err)
	}
	if _, held, err := stores[1].Lock(ctx, "example.org"); !held || err != nil {
		t.Errorf("Lock after Unlock = %v, %v", held, err)
	}
}
