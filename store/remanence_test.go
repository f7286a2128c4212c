package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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
	email, phone := "remanent.shopper@example.com", "+33611223344"
	path := eraseInSQLite(t, func(c *store.Customer) []*store.Event {
		c.Email, c.Phone, c.Profile = &email, &phone, store.Profile{"firstName": "Remanentia"}
		return nil
	})
	notInFile(t, path, email, phone, "Remanentia")
}

// A row larger than a page (a profile's notes of some KiB, the event that
// carries them) spills into overflow pages, which a delete or an update
// frees whole: secure_delete FAST zeroes only the free space inside a page,
// and a freed page went to the freelist with the erased data in it.
func TestAnErasureLeavesNothingOfARowLargerThanAPageInTheSQLiteFile(t *testing.T) {
	email, phone := "overflowing.shopper@example.com", "+33655667788"
	notes := strings.Repeat("Overflowia keeps her notes here. ", 400) // 13 KiB: three pages and more
	path := eraseInSQLite(t, func(c *store.Customer) []*store.Event {
		c.Email, c.Phone, c.Profile = &email, &phone, store.Profile{"notes": notes}
		payload, err := json.Marshal(map[string]any{"id": uuid.NewString(), "type": "Customer:Upserted", "tenantId": c.TenantID,
			"customerId": c.ID, "occurredAt": c.CreatedAt.Format(time.RFC3339Nano),
			"data": map[string]any{"id": c.ID, "email": email, "phoneNumber": phone, "notes": notes}})
		if err != nil {
			t.Fatal(err)
		}
		return []*store.Event{{ID: uuid.NewString(), TenantID: c.TenantID, CustomerID: c.ID, Type: "Customer:Upserted",
			Payload: string(payload), CreatedAt: c.CreatedAt}}
	})
	notInFile(t, path, phone, "Overflowia")
}

// eraseInSQLite stores a customer with verified contacts in a new SQLite
// database, as fill makes it, with the events fill returns, erases it and
// closes the database (a checkpoint: every page is in the file): the
// file's path.
func eraseInSQLite(t *testing.T, fill func(c *store.Customer) []*store.Event) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "erased.db")
	s, err := store.Open(ctx, "sqlite://"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	c := &store.Customer{ID: uuid.NewString(), TenantID: "demo", EmailVerified: true, PhoneVerified: true, CreatedAt: now, UpdatedAt: now, Version: 1}
	events := fill(c)
	if err := s.CreateCustomer(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if err := s.AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := privacy.New(s.(privacy.Store), nil).Erase(ctx, &tenant.Tenant{ID: "demo"}, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// notInFile fails t when the SQLite database at path or its WAL holds one
// of secrets.
func notInFile(t *testing.T, path string, secrets ...string) {
	t.Helper()
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, p := range secrets {
			if n := bytes.Count(b, []byte(p)); n > 0 {
				t.Errorf("%s still holds %s (%d times)", filepath.Base(f), p, n)
			}
		}
	}
}
