package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/customerd/customerd/privacy"
	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/tenant"
)

// An erasure leaves the customer's data in no page of the SQLite file: a
// deleted cell, or an index entry, stayed in the page's free space until
// something else took its place, for anyone with a copy of the file to
// read (secure_delete FAST zeroes it, with no more I/O). The WAL holds the
// pages as they were until later writes overwrite them; a backup taken
// before, the data as it was.
func TestAnErasureLeavesNothingInTheSQLiteFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "erased.db")
	s, err := store.Open(ctx, "sqlite://"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	email, phone := "remanent.shopper@example.com", "+33611223344"
	c := &store.Customer{ID: uuid.NewString(), TenantID: "demo", Email: &email, EmailVerified: true, Phone: &phone, PhoneVerified: true,
		Profile: store.Profile{"firstName": "Remanentia"}, CreatedAt: now, UpdatedAt: now, Version: 1}
	if err := s.CreateCustomer(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := privacy.New(s.(privacy.Store), nil).Erase(ctx, &tenant.Tenant{ID: "demo"}, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // a checkpoint: every page is in the file
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, p := range []string{email, phone, "Remanentia"} {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s still holds %s", filepath.Base(f), p)
			}
		}
	}
}
