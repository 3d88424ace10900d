package cache

import (
	"context"
	"errors"
	"log/slog"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/logname"
)

// maxStoreCalls bounds the calls to the store that run at once. Calls that a
// store does not end by their deadline go on in the background, and a store
// that ignores its context may never end them: this bounds what such a store
// can hold, after which calls fail at once until some end.
const maxStoreCalls = 64

// errStoreBusy is the error of a store call not made because maxStoreCalls
// calls are still running.
var errStoreBusy = errors.New("cache: store busy: too many calls still running")

// storeCall runs op, one call to the store, with a context that ends after
// StoreTimeout, or with ctx. It returns op's error, or, when op has not
// returned by then, the context's error: past StoreTimeout the cache goes on
// as without the store, even when the store ignores its context. Such an op
// ends in the background, and op must then not touch what the caller reads
// unless it returned nil.
func (c *Cache) storeCall(ctx context.Context, op func(ctx context.Context) error) error {
	if _, ok := c.opts.Store.(noStore); ok {
		return nil // nothing to guard, nor to do
	}
	select {
	case c.storeCalls <- struct{}{}:
	default:
		return errStoreBusy
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.StoreTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() { <-c.storeCalls }()
		done <- op(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storeError counts a failed call to the store, and logs it to log.
func (c *Cache) storeError(log *slog.Logger, op string, domain mtasts.Domain, err error) {
	c.metrics.storeErrors.WithLabelValues(op).Inc()
	log.Warn("mta-sts: policy store failed, going on without it", "op", op, "domain", logname.Domain(domain.ASCII, domain.Unicode), "err", err)
}

// storeInvalid counts an entry of the store that the cache corrected or
// ignored, and logs it to log.
func (c *Cache) storeInvalid(log *slog.Logger, domain mtasts.Domain, err error) {
	c.metrics.storeErrors.WithLabelValues("load").Inc()
	log.Log(c.ctx, slog.LevelWarn, "mta-sts: invalid policy store entry", "domain", logname.Domain(domain.ASCII, domain.Unicode), "err", err)
}
