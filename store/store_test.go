package store_test

import (
	"testing"

	"github.com/customerd/customerd/store"
	"github.com/customerd/customerd/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return storetest.Open(t, b.URL(t)) })
		})
	}
}
