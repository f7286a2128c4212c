package admin

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/customerd/customerd/catalog"
	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/gen/adminapi"
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

// etag is a tenant version as an entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch is the version an If-Match header asks for: 0 for none or "*", -1
// for a tag no version has (the write is then refused as stale).
func ifMatch(h *string) int64 {
	if h == nil {
		return 0
	}
	tag := strings.TrimPrefix(strings.TrimSpace(*h), "W/")
	if tag == "*" {
		return 0
	}
	v, err := strconv.ParseInt(strings.Trim(tag, `"`), 10, 64)
	if err != nil || v < 1 {
		return -1
	}
	return v
}

// Cursors are opaque to clients: base64url of what the next page starts after.
func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeCursor(c *string) (string, error) {
	if c == nil || *c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(*c)
	if err != nil || len(b) == 0 {
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
