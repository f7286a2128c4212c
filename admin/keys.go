package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/customerd/customerd/store"
)

// An admin API key is cdk_<id>_<secret>: the id (16 hex digits) finds the
// stored key, the secret (256 random bits) proves it. Only the SHA-256 of
// the whole key is stored; the key is shown once, when it is made.
const keyPrefix = "cdk_"

var (
	keyPattern = regexp.MustCompile(`^cdk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$`)
	tenantID   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// KeyStore keeps admin keys.
type KeyStore interface {
	CreateAdminKey(ctx context.Context, k *store.AdminKey) error
	AdminKeys(ctx context.Context) ([]store.AdminKey, error)
	// RevokeAdminKey revokes a key at once: store.ErrNotFound when there is no live key id.
	RevokeAdminKey(ctx context.Context, id string, at time.Time) error
}

// Scope is what a key may manage: every tenant, or the tenants listed.
type Scope struct {
	All bool
	// Tenants are sorted, each once.
	Tenants []string
}

// ParseScope reads `*` or a comma-separated list of tenant ids.
func ParseScope(s string) (Scope, error) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return Scope{All: true}, nil
	}
	var ids []string
	for id := range strings.SplitSeq(s, ",") {
		id = strings.TrimSpace(id)
		if !tenantID.MatchString(id) {
			return Scope{}, fmt.Errorf("scope: %q is not a tenant id; want '*' or tenant ids separated by commas", id)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return Scope{Tenants: slices.Compact(ids)}, nil
}

// Allows reports whether the scope covers tenant.
func (s Scope) Allows(tenant string) bool {
	return s.All || slices.Contains(s.Tenants, tenant)
}

// String is the scope as stored: "*" or a JSON array.
func (s Scope) String() string {
	if s.All {
		return "*"
	}
	b, _ := json.Marshal(s.Tenants)
	return string(b)
}

// StoredScope reads a scope as String stored it.
func StoredScope(s string) (Scope, error) {
	if s == "*" {
		return Scope{All: true}, nil
	}
	var ids []string
	if err := json.Unmarshal([]byte(s), &ids); err != nil {
		return Scope{}, fmt.Errorf("stored scope: %w", err)
	}
	// As ParseScope made it: a key's tenants are listed in this order.
	slices.Sort(ids)
	return Scope{Tenants: slices.Compact(ids)}, nil
}

// CreateKey makes a key for scope and returns it: the only time it is seen.
func CreateKey(ctx context.Context, ks KeyStore, scope Scope, name string, now time.Time) (id, key string, err error) {
	var idb [8]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", "", err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", "", err
	}
	id = hex.EncodeToString(idb[:])
	key = keyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	err = ks.CreateAdminKey(ctx, &store.AdminKey{ID: id, Hash: hashKey(key), Scope: scope.String(), Name: name, CreatedAt: now})
	return id, key, err
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// caller is the key a request was made with.
type caller struct {
	id    string
	scope Scope
}

// errBadKey: no key, an unknown or revoked one, or one that does not match.
var errBadKey = errors.New("not a valid admin key")

// authenticate checks an Authorization header against the stored keys.
func authenticate(ctx context.Context, keys func(context.Context, string) (*store.AdminKey, error), header string) (*caller, error) {
	scheme, key, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errBadKey
	}
	m := keyPattern.FindStringSubmatch(strings.TrimSpace(key))
	if m == nil {
		return nil, errBadKey
	}
	k, err := keys(ctx, m[1])
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadKey
	} else if err != nil {
		return nil, err
	}
	// The hashes are compared in constant time, and a revoked key is refused only after the comparison.
	if subtle.ConstantTimeCompare([]byte(hashKey(m[0])), []byte(k.Hash)) != 1 || k.RevokedAt != nil {
		return nil, errBadKey
	}
	scope, err := StoredScope(k.Scope)
	if err != nil {
		return nil, err
	}
	return &caller{id: k.ID, scope: scope}, nil
}
