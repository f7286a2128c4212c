package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// TenantRow is one tenant's stored settings: the tenant's configuration block
// as JSON without its secrets, and the secrets sealed apart.
type TenantRow struct {
	ID        string `gorm:"primaryKey"`
	Settings  string
	Secrets   []byte
	Version   int64
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"autoUpdateTime:false"`
}

// TableName is the tenants table.
func (TenantRow) TableName() string { return "tenants" }

// tenantsChannel is the PostgreSQL channel a tenant's id is notified on when
// it changes, for the other replicas. A channel spans the whole database,
// so the payload is the schema, a slash and the id: deployments (and test
// runs) that share a database in schemas of their own hear only their own
// changes.
const tenantsChannel = "customerd_tenants"

// Tenant reads one tenant: ErrNotFound when there is none.
func (s *db) Tenant(ctx context.Context, id string) (*TenantRow, error) {
	var t TenantRow
	if err := s.r.WithContext(ctx).Where("id = ?", id).Take(&t).Error; err != nil {
		return nil, classify(err)
	}
	return &t, nil
}

// TenantStamp tells one stored tenant's settings from every other: its
// version, and its creation time, since a tenant deleted and created again
// starts again at version 1.
type TenantStamp struct {
	Version int64
	Created int64 // CreatedAt in Unix nanoseconds, as stored
}

// Stamp is the row's TenantStamp.
func (t *TenantRow) Stamp() TenantStamp {
	return TenantStamp{Version: t.Version, Created: t.CreatedAt.UnixNano()}
}

// Newer reports whether s is a later state of the tenant than o: created
// after it, or the same tenant at a later version.
func (s TenantStamp) Newer(o TenantStamp) bool {
	return s.Created > o.Created || s.Created == o.Created && s.Version > o.Version
}

// TenantVersions are the stamp of every tenant, by id.
func (s *db) TenantVersions(ctx context.Context) (map[string]TenantStamp, error) {
	var rows []TenantRow
	if err := s.r.WithContext(ctx).Select("id, version, created_at").Find(&rows).Error; err != nil {
		return nil, classify(err)
	}
	out := make(map[string]TenantStamp, len(rows))
	for i := range rows {
		out[rows[i].ID] = rows[i].Stamp()
	}
	return out, nil
}

// Tenants lists up to limit tenants in id order, after the id after ("" from the first).
func (s *db) Tenants(ctx context.Context, after string, limit int) ([]TenantRow, error) {
	var out []TenantRow
	err := s.r.WithContext(ctx).Where("id > ?", after).Order("id").Limit(limit).Find(&out).Error
	return out, classify(err)
}

// CreateTenant writes a new tenant at version 1: ErrConflict when the id is taken.
func (s *db) CreateTenant(ctx context.Context, t *TenantRow) error {
	t.Version, t.CreatedAt, t.UpdatedAt = 1, t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return s.changeTenant(ctx, t.ID, func(g *gorm.DB) error { return g.Create(t).Error })
}

// Stamp is one tenant's version as of one creation of it: a tenant deleted
// and created again starts at version 1 anew, and only its creation time
// (to the microsecond, as PostgreSQL keeps it and an ETag shows it) tells
// the two apart. The zero Stamp asks for nothing.
type Stamp struct {
	Version   int64
	CreatedAt time.Time
}

// StampOf is t's stamp.
func StampOf(t *TenantRow) Stamp { return Stamp{Version: t.Version, CreatedAt: t.CreatedAt} }

// Is reports whether s is the stamp of a tenant at version, created at created.
func (s Stamp) Is(version int64, created time.Time) bool {
	return s.Version == version && s.CreatedAt.UnixMicro() == created.UnixMicro()
}

// UpdateTenant replaces the tenant stamped as t (StampOf) and bumps its
// version: ErrNotFound when there is none, ErrStale when it changed since,
// or was deleted and created again.
func (s *db) UpdateTenant(ctx context.Context, t *TenantRow) error {
	err := s.changeTenant(ctx, t.ID, func(g *gorm.DB) error {
		if err := s.lockTenant(g, t.ID, StampOf(t)); err != nil {
			return err
		}
		return g.Model(&TenantRow{}).Where("id = ?", t.ID).Updates(map[string]any{
			"settings": t.Settings, "secrets": t.Secrets, "version": t.Version + 1, "updated_at": t.UpdatedAt.UTC()}).Error
	})
	if err == nil {
		t.Version++
	}
	return err
}

// DeleteTenant deletes a tenant; at, when not the zero Stamp, must be the
// stored one's (ErrStale otherwise). ErrNotFound when there is none.
func (s *db) DeleteTenant(ctx context.Context, id string, at Stamp) error {
	return s.changeTenant(ctx, id, func(g *gorm.DB) error {
		if at != (Stamp{}) {
			if err := s.lockTenant(g, id, at); err != nil {
				return err
			}
		}
		res := g.Where("id = ?", id).Delete(&TenantRow{})
		if res.Error != nil || res.RowsAffected == 1 {
			return res.Error
		}
		return ErrNotFound
	})
}

// lockTenant reads tenant id's stamp in g's transaction, its row locked on
// PostgreSQL (SQLite's transaction holds the one writer), so that the write
// after it changes what was judged: ErrNotFound when there is none,
// ErrStale when it is not at. The creation is compared here, not in SQL,
// where a time's text (SQLite) or precision would decide equality.
func (s *db) lockTenant(g *gorm.DB, id string, at Stamp) error {
	var cur TenantRow
	err := s.locked(g.Select("id", "version", "created_at").Where("id = ?", id), clause.LockingStrengthUpdate).Take(&cur).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case err != nil:
		return err
	case !at.Is(cur.Version, cur.CreatedAt):
		return ErrStale
	}
	return nil
}

// changeTenant runs write in a transaction that, on PostgreSQL, also
// notifies the other replicas of the change when it commits.
func (s *db) changeTenant(ctx context.Context, id string, write func(*gorm.DB) error) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := write(tx); err != nil {
			return err
		}
		if s.postgres() {
			return tx.Exec("SELECT pg_notify(?, current_schema() || '/' || ?)", tenantsChannel, id).Error
		}
		return nil
	})
	return classify(err)
}

// ErrNoWatch: the database cannot tell this replica of other replicas'
// changes (SQLite, where the replicas are one process).
var ErrNoWatch = errors.New("this database does not notify changes")

// WatchTenants calls listening once it listens, then changed with the id of
// every tenant another replica (or this one) changes, until ctx ends or the
// connection fails; then it returns the reason. On SQLite it returns
// ErrNoWatch at once. It listens on a connection of its own, outside the
// pool, which it closes when it returns.
func (s *db) WatchTenants(ctx context.Context, listening func(), changed func(id string)) error {
	if !s.postgres() {
		return ErrNoWatch
	}
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return classify(err)
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closing)
	}()
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return classify(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+tenantsChannel); err != nil {
		return classify(err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return classify(err)
		}
		if id, ok := strings.CutPrefix(n.Payload, schema+"/"); ok {
			changed(id)
		}
	}
}
