package admin

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/gen/adminapi"
	"github.com/customerd/customerd/store"
)

// tenantBody is a stored tenant as the contract answers it.
func tenantBody(e *catalog.Entry) (adminapi.Tenant, error) {
	var settings adminapi.TenantSettings
	b, err := json.Marshal(e.Settings)
	if err != nil {
		return adminapi.Tenant{}, err
	}
	if err := json.Unmarshal(b, &settings); err != nil {
		return adminapi.Tenant{}, err
	}
	secrets := e.Secrets
	if secrets == nil {
		secrets = []string{}
	}
	return adminapi.Tenant{Id: e.ID, Settings: settings, SecretsSet: secrets, Version: e.Version,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}, nil
}

// document is the settings of a request body as a tenant document.
func document(s adminapi.TenantSettings) (map[string]any, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return config.ParseDocument(b)
}

// etag is a stored tenant's state as an entity tag: its version and, apart
// from it, when it was created, since a tenant deleted and created again
// starts again at version 1 (an If-Match read from the deleted one must not
// match its successor).
func etag(e *catalog.Entry) string {
	return `"` + strconv.FormatInt(e.Version, 10) + "." + strconv.FormatInt(e.CreatedAt.UnixMicro(), 36) + `"`
}

// ifMatch is the stamp an If-Match header asks for, judged against the
// tenant as stored (cur): the zero Stamp for none or "*", cur's version and
// creation when one of its tags is cur's, a stamp of no tenant otherwise
// (the write is then refused as stale). Tags compare strongly (RFC 9110): a
// weak one never matches.
func ifMatch(h *string, cur *catalog.Entry) store.Stamp {
	if h == nil || strings.TrimSpace(*h) == "*" {
		return store.Stamp{}
	}
	want := etag(cur)
	for tag := range strings.SplitSeq(*h, ",") {
		if strings.TrimSpace(tag) == want {
			return stampOf(cur)
		}
	}
	return store.Stamp{Version: -1}
}

// stampOf is the stamp of the tenant cur shows.
func stampOf(cur *catalog.Entry) store.Stamp {
	return store.Stamp{Version: cur.Version, CreatedAt: cur.CreatedAt}
}

// Cursors are opaque to clients: base64url of what the next page starts after.
func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeCursor(c *string) (string, error) {
	if c == nil || *c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(*c)
	if err != nil || len(b) == 0 || !isPlainText(string(b)) {
		return "", badRequestError{detail: "the cursor is not one this API gave"}
	}
	return string(b), nil
}

// pageSize is the limit asked for, 50 by default.
func pageSize(limit *int) int {
	if limit == nil {
		return 50
	}
	return *limit
}
