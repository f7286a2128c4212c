package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/store"
)

// Watcher tells a replica which tenants changed in the database, as they change.
type Watcher interface {
	// WatchTenants calls listening once it listens, then changed with each
	// changed tenant's id, until ctx ends or the connection fails;
	// store.ErrNoWatch when the database cannot.
	WatchTenants(ctx context.Context, listening func(), changed func(id string)) error
}

// Live is the set of tenants one replica serves, built from the database on
// first use and rebuilt when a tenant's version changes. A built tenant is
// never changed: a request that resolved one finishes with it.
type Live[T any] struct {
	catalog *Catalog
	build   func(id string, t *config.Tenant) (T, error)
	log     *slog.Logger

	mu sync.Mutex
	// known is every tenant's stamp in the database, as last seen (its
	// version and creation time: a tenant deleted and created again starts
	// again at version 1); an id that is not known is answered "not found"
	// without a query.
	known map[string]store.TenantStamp
	built map[string]*built[T]
}

type built[T any] struct {
	version store.TenantStamp
	value   T
	err     error
	ready   chan struct{} // closed once value or err is set
}

// NewLive returns the live set of c's tenants; build opens one tenant.
func NewLive[T any](c *Catalog, build func(id string, t *config.Tenant) (T, error), log *slog.Logger) *Live[T] {
	return &Live[T]{catalog: c, build: build, log: log, known: map[string]store.TenantStamp{}, built: map[string]*built[T]{}}
}

// Load reads every tenant's version: the replica then knows which tenants exist.
func (l *Live[T]) Load(ctx context.Context) error {
	versions, err := l.catalog.store.TenantVersions(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.known = versions
	for id, b := range l.built {
		if v, ok := versions[id]; !ok || v != b.version {
			delete(l.built, id)
		}
	}
	return nil
}

// Len counts the tenants the replica knows.
func (l *Live[T]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.known)
}

// Get is tenant id as built from its current settings: store.ErrNotFound
// when there is no such tenant.
func (l *Live[T]) Get(ctx context.Context, id string) (T, error) {
	var zero T
	l.mu.Lock()
	version, ok := l.known[id]
	if !ok {
		l.mu.Unlock()
		return zero, store.ErrNotFound
	}
	b := l.built[id]
	if b == nil || b.version != version {
		b = &built[T]{version: version, ready: make(chan struct{})}
		l.built[id] = b
		l.mu.Unlock()
		l.open(ctx, id, b)
	} else {
		l.mu.Unlock()
	}
	select {
	case <-b.ready:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	return b.value, b.err
}

// open builds b from the database; concurrent requests for the tenant wait for it.
func (l *Live[T]) open(ctx context.Context, id string, b *built[T]) {
	defer close(b.ready)
	t, version, err := l.catalog.Settings(context.WithoutCancel(ctx), id)
	if err == nil {
		b.value, err = l.build(id, t)
	}
	if err != nil {
		b.err = err
		l.mu.Lock()
		if l.built[id] == b {
			delete(l.built, id) // the next request tries again
		}
		if errors.Is(err, store.ErrNotFound) {
			delete(l.known, id)
		}
		l.mu.Unlock()
		if !errors.Is(err, store.ErrNotFound) {
			b.err = fmt.Errorf("tenant %s: %w", id, err)
		}
		return
	}
	l.mu.Lock()
	if version.Newer(l.known[id]) {
		l.known[id] = version
	}
	b.version = version
	l.mu.Unlock()
}

// Changed learns tenant id's version again (it was created, updated or
// deleted): the next request for it builds it anew.
func (l *Live[T]) Changed(ctx context.Context, id string) error {
	row, err := l.catalog.store.Tenant(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if row == nil {
		delete(l.known, id)
		delete(l.built, id)
		return nil
	}
	l.known[id] = row.Stamp()
	if b := l.built[id]; b != nil && b.version != row.Stamp() {
		delete(l.built, id)
	}
	return nil
}

// Run keeps the set current until ctx ends: every change another replica
// makes is notified at once where the database can (PostgreSQL), and every
// reconcile interval the versions are read again, which heals a missed
// notification (and is how SQLite's separate processes, such as
// `customerd tenants apply`, reach a running server).
func (l *Live[T]) Run(ctx context.Context, w Watcher, reconcile time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { l.watch(ctx, w) })
	t := time.NewTicker(reconcile)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.Load(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("reconcile tenants", "error", err.Error())
			}
		}
	}
}

func (l *Live[T]) watch(ctx context.Context, w Watcher) {
	// What changed while nobody listened (before the first LISTEN, or
	// between a lost connection and the next) is read once listening.
	reconcile := func() {
		if err := l.Load(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("reconcile tenants", "error", err.Error())
		}
	}
	for ctx.Err() == nil {
		err := w.WatchTenants(ctx, reconcile, func(id string) {
			if err := l.Changed(ctx, id); err != nil && ctx.Err() == nil {
				l.log.Warn("tenant changed", "tenant", id, "error", err.Error())
			}
		})
		if errors.Is(err, store.ErrNoWatch) || ctx.Err() != nil {
			return
		}
		l.log.Warn("watch tenants: reconnecting", "error", err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
