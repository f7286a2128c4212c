// Package catalog keeps the tenants of the database: each tenant's settings
// as a document (its block of the configuration file, as JSON) with the
// secrets sealed apart, written only after the configuration's own rules and
// the provider registry accept them, and the live set every replica serves
// from, kept current by notifications and a periodic reconcile.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/token"
)

// Store is the persistence the catalog needs.
type Store interface {
	Tenant(ctx context.Context, id string) (*store.TenantRow, error)
	TenantVersions(ctx context.Context) (map[string]store.TenantStamp, error)
	Tenants(ctx context.Context, after string, limit int) ([]store.TenantRow, error)
	CreateTenant(ctx context.Context, t *store.TenantRow) error
	UpdateTenant(ctx context.Context, t *store.TenantRow) error
	DeleteTenant(ctx context.Context, id string, at store.Stamp) error
}

// Check judges a tenant's filled settings as start-up judges the file's: the
// configuration's rules, then opening its senders, providers and flows. Its
// error is config.Problems, every bad setting named by its path in the file
// (tenants.acme.otp.maxAttempts).
type Check func(id string, t *config.Tenant) error

// Catalog reads and writes the tenants of the database.
type Catalog struct {
	store Store
	seal  token.Sealer
	check Check
	now   func() time.Time
}

// New returns a Catalog; sealKey (32 bytes) seals the tenants' secrets.
func New(s Store, sealKey []byte, check Check) (*Catalog, error) {
	se, err := token.NewSealer(sealKey)
	if err != nil {
		return nil, err
	}
	return &Catalog{store: s, seal: se, check: check, now: time.Now}, nil
}

// Entry is a stored tenant as the admin API shows it: never its secrets.
type Entry struct {
	ID string
	// Settings is every setting but the secrets.
	Settings map[string]any
	// Secrets are the paths of the secrets that are set.
	Secrets   []string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// InvalidError is a tenant refused: messages by setting path inside the
// tenant ("otp.maxAttempts"). Its text is start-up's, one bad setting a line.
type InvalidError struct {
	Fields map[string][]string
	err    error
}

func (e *InvalidError) Error() string { return e.err.Error() }

// invalid turns what decoding or Check found into an InvalidError whose
// fields are the settings' paths inside the tenant.
func invalid(id string, err error) *InvalidError {
	out := &InvalidError{Fields: map[string][]string{}, err: err}
	add := func(path, msg string) {
		field := strings.TrimPrefix(strings.TrimPrefix(path, "tenants."+id), ".")
		if field == "" {
			field = "settings"
		}
		out.Fields[field] = append(out.Fields[field], msg)
	}
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			add(p.Path, p.Message)
		}
	} else {
		add("", err.Error())
	}
	return out
}

// Get reads tenant id: store.ErrNotFound when there is none.
func (c *Catalog) Get(ctx context.Context, id string) (*Entry, error) {
	row, err := c.store.Tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.entry(row)
}

// CheckSeal opens the secrets of the first tenant stored: store.ErrWrongSecret
// when the seal key cannot, nil when it can or there is no tenant yet.
func (c *Catalog) CheckSeal(ctx context.Context) error {
	rows, err := c.store.Tenants(ctx, "", 1)
	if err != nil || len(rows) == 0 {
		return err
	}
	if _, err := c.seal.Open(rows[0].Secrets, sealedFor(rows[0].ID)); err != nil {
		return store.ErrWrongSecret
	}
	return nil
}

// List reads up to limit tenants in id order after the id after.
func (c *Catalog) List(ctx context.Context, after string, limit int) ([]*Entry, error) {
	rows, err := c.store.Tenants(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*Entry, 0, len(rows))
	for i := range rows {
		e, err := c.entry(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (c *Catalog) entry(row *store.TenantRow) (*Entry, error) {
	doc, secrets, err := c.open(row)
	if err != nil {
		return nil, err
	}
	return &Entry{ID: row.ID, Settings: doc, Secrets: config.SecretPaths(secrets), Version: row.Version,
		CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}, nil
}

// open reads a stored tenant's document and, apart, its secrets.
func (c *Catalog) open(row *store.TenantRow) (doc, secrets map[string]any, err error) {
	if doc, err = config.ParseDocument([]byte(row.Settings)); err != nil {
		return nil, nil, fmt.Errorf("tenant %s: settings: %w", row.ID, err)
	}
	plain, err := c.seal.Open(row.Secrets, sealedFor(row.ID))
	if err != nil {
		return nil, nil, fmt.Errorf("tenant %s: secrets: %w", row.ID, err)
	}
	if secrets, err = config.ParseDocument(plain); err != nil {
		return nil, nil, fmt.Errorf("tenant %s: secrets: %w", row.ID, err)
	}
	return doc, secrets, nil
}

// sealedFor binds a tenant's sealed secrets to it.
func sealedFor(id string) string { return "tenant/" + id }

// full is a stored tenant's document with its secrets.
func (c *Catalog) full(row *store.TenantRow) (map[string]any, error) {
	doc, secrets, err := c.open(row)
	if err != nil {
		return nil, err
	}
	config.MergeSecrets(doc, secrets)
	return doc, nil
}

// Settings reads tenant id as the service builds it, secrets included, with
// the stamp of what it read.
func (c *Catalog) Settings(ctx context.Context, id string) (*config.Tenant, store.TenantStamp, error) {
	row, err := c.store.Tenant(ctx, id)
	if err != nil {
		return nil, store.TenantStamp{}, err
	}
	doc, err := c.full(row)
	if err != nil {
		return nil, store.TenantStamp{}, err
	}
	t, err := config.DecodeTenant(id, doc)
	if err != nil {
		return nil, store.TenantStamp{}, fmt.Errorf("tenant %s: %w", id, err)
	}
	return t, row.Stamp(), nil
}

// Judge reads tenant id as the service builds it and judges it as a write
// would (Check): nil while it loads, config.Problems naming each setting a
// rule of this version refuses. A tenant stored before a rule was added is
// judged by it only here and when it is built: it then fails to load.
func (c *Catalog) Judge(ctx context.Context, id string) error {
	t, _, err := c.Settings(ctx, id)
	if err != nil {
		return err
	}
	return c.check(id, t)
}

// prepare reads doc as a tenant's settings, keeps the secrets it leaves out
// from prev (the stored tenant's full document; nil for a new tenant, or to
// keep none) where their block is unchanged, and judges the result: the
// full document to store, or an InvalidError.
func (c *Catalog) prepare(id string, doc, prev map[string]any) (map[string]any, error) {
	t, err := config.DecodeTenant(id, doc)
	if err != nil {
		return nil, invalid(id, err)
	}
	full, err := t.Document()
	if err != nil {
		return nil, err
	}
	if prev != nil {
		config.KeepSecrets(full, prev, doc)
		if t, err = config.DecodeTenant(id, full); err != nil {
			return nil, invalid(id, err)
		}
	}
	if err := c.check(id, t); err != nil {
		return nil, invalid(id, err)
	}
	return full, nil
}

// row seals a full document into a row of tenant id.
func (c *Catalog) row(id string, full map[string]any) (*store.TenantRow, error) {
	doc, err := config.ParseDocument(mustJSON(full))
	if err != nil {
		return nil, err
	}
	secrets := config.SplitSecrets(doc)
	if secrets == nil {
		secrets = map[string]any{}
	}
	sealed, err := c.seal.Seal(mustJSON(secrets), sealedFor(id))
	if err != nil {
		return nil, err
	}
	// In microseconds, as PostgreSQL keeps them: the creation time read back
	// is the one answered at creation (it is part of the tenant's ETag).
	now := c.now().UTC().Truncate(time.Microsecond)
	return &store.TenantRow{ID: id, Settings: string(mustJSON(doc)), Secrets: sealed, CreatedAt: now, UpdatedAt: now}, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("catalog: a document always encodes: %v", err)) // maps of JSON values only
	}
	return b
}

// Create writes a new tenant from doc: an InvalidError when its settings
// are refused, store.ErrConflict when id is taken.
func (c *Catalog) Create(ctx context.Context, id string, doc map[string]any) (*Entry, error) {
	full, err := c.prepare(id, doc, nil)
	if err != nil {
		return nil, err
	}
	row, err := c.row(id, full)
	if err != nil {
		return nil, err
	}
	if err := c.store.CreateTenant(ctx, row); err != nil {
		return nil, err
	}
	return c.entry(row)
}

// Replace replaces tenant id's settings with doc; a secret doc leaves out is
// kept when the rest of its block is unchanged, one it sets to null or ""
// is removed. at, when not the zero Stamp, must be the stored tenant's
// (store.ErrStale otherwise): its version of the same creation, not one of
// a tenant deleted and created again since, which starts at version 1 anew.
func (c *Catalog) Replace(ctx context.Context, id string, doc map[string]any, at store.Stamp) (*Entry, error) {
	return c.replace(ctx, id, doc, at, true)
}

// replace is Replace; keep false keeps no secret doc leaves out.
func (c *Catalog) replace(ctx context.Context, id string, doc map[string]any, at store.Stamp, keep bool) (*Entry, error) {
	stored, err := c.store.Tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	if at != (store.Stamp{}) && !at.Is(stored.Version, stored.CreatedAt) {
		return nil, store.ErrStale
	}
	var prev map[string]any
	if keep {
		if prev, err = c.full(stored); err != nil {
			return nil, err
		}
	}
	full, err := c.prepare(id, doc, prev)
	if err != nil {
		return nil, err
	}
	row, err := c.row(id, full)
	if err != nil {
		return nil, err
	}
	row.Version, row.CreatedAt = stored.Version, stored.CreatedAt
	if err := c.store.UpdateTenant(ctx, row); err != nil {
		return nil, err
	}
	return c.entry(row)
}

// Delete deletes tenant id; at, when not the zero Stamp, must be the
// stored tenant's.
func (c *Catalog) Delete(ctx context.Context, id string, at store.Stamp) error {
	return c.store.DeleteTenant(ctx, id, at)
}
