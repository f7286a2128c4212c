package store

import (
	"context"
	"time"
)

// AdminKey is one admin API key. Only a hash of the key is kept.
type AdminKey struct {
	ID string `gorm:"primaryKey"`
	// Hash is the hex SHA-256 of the whole key.
	Hash string
	// Scope is "*" (every tenant) or a JSON array of tenant ids.
	Scope     string
	Name      string
	CreatedAt time.Time  `gorm:"autoCreateTime:false"`
	RevokedAt *time.Time `gorm:"column:revoked_at"`
}

// TableName is the admin_keys table.
func (AdminKey) TableName() string { return "admin_keys" }

// CreateAdminKey stores a new key: ErrConflict when its id is taken.
func (s *db) CreateAdminKey(ctx context.Context, k *AdminKey) error {
	k.CreatedAt = k.CreatedAt.UTC()
	return classify(s.w.WithContext(ctx).Create(k).Error)
}

// AdminKey reads a key by id, revoked or not: ErrNotFound when there is none.
func (s *db) AdminKey(ctx context.Context, id string) (*AdminKey, error) {
	var k AdminKey
	if err := s.r.WithContext(ctx).Where("id = ?", id).Take(&k).Error; err != nil {
		return nil, classify(err)
	}
	return &k, nil
}

// AdminKeys lists every key, oldest first.
func (s *db) AdminKeys(ctx context.Context) ([]AdminKey, error) {
	var out []AdminKey
	err := s.r.WithContext(ctx).Order("created_at, id").Find(&out).Error
	return out, classify(err)
}

// RevokeAdminKey revokes a live key at at: ErrNotFound when there is no live key id.
func (s *db) RevokeAdminKey(ctx context.Context, id string, at time.Time) error {
	res := s.w.WithContext(ctx).Model(&AdminKey{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", at.UTC())
	if err := classify(res.Error); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// AuditEntry is one admin write: never a secret, a code or personal data,
// only ids.
type AuditEntry struct {
	Seq       int64 `gorm:"primaryKey;autoIncrement"`
	At        time.Time
	KeyID     string `gorm:"column:key_id"`
	TenantID  string `gorm:"column:tenant_id"`
	Action    string
	Target    string
	RequestID string `gorm:"column:request_id"`
}

// TableName is the audit_log table.
func (AuditEntry) TableName() string { return "audit_log" }

// AuditQuery selects audit entries, oldest first.
type AuditQuery struct {
	// Tenants, when not nil, keeps the entries of these tenants only.
	Tenants []string
	// After is the Seq of the last entry already read.
	After int64
	Limit int
}

// AddAudit records an admin write.
func (s *db) AddAudit(ctx context.Context, e *AuditEntry) error {
	e.At = e.At.UTC()
	return classify(s.w.WithContext(ctx).Create(e).Error)
}

// Audit lists audit entries.
func (s *db) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	g := s.r.WithContext(ctx).Where("seq > ?", q.After)
	if q.Tenants != nil {
		g = g.Where("tenant_id IN ?", append([]string{}, q.Tenants...))
	}
	var out []AuditEntry
	err := g.Order("seq").Limit(q.Limit).Find(&out).Error
	return out, classify(err)
}
