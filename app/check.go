package app

import (
	"errors"
	"log/slog"
	"maps"
	"slices"

	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/providers"
)

// CheckProviders judges every provider's settings as opening it would: the
// registry's factories build providers without reaching the database or the
// network (keys and discovery documents are fetched on first use), so this
// is what `customerd config check` and serve run before anything starts.
func CheckProviders(cfg *config.Config) config.Problems {
	quiet := slog.New(slog.DiscardHandler)
	registry := Registry(quiet)
	var ps config.Problems
	for _, id := range cfg.TenantIDs() {
		tc := cfg.Tenants[id]
		deps := providers.Deps{Tenant: id, Logger: quiet}
		for _, name := range slices.Sorted(maps.Keys(tc.Providers)) {
			pc := tc.Providers[name]
			if pc.Type == "" {
				continue // config names it
			}
			if _, err := registry.Open(name, pc.Type, pc.Settings, deps); err != nil {
				ps = append(ps, providerProblem(id, name, err))
			}
		}
	}
	return ps
}

// providerProblem names a provider's bad setting by its path in the file.
func providerProblem(tenant, name string, err error) config.Problem {
	at := "tenants." + tenant + ".providers." + name
	var unknown *providers.UnknownSettingError
	if errors.As(err, &unknown) {
		return config.Problem{Path: at + "." + unknown.Name, Message: config.UnknownSetting(unknown.Name, unknown.Known)}
	}
	return config.ProblemAt(at, err)
}
