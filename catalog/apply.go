package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"

	"github.com/customerd/customerd/config"
	"github.com/customerd/customerd/egress"
	"github.com/customerd/customerd/store"
)

// Change is what applying a tenant's settings did, or would do.
type Change struct {
	ID string
	// Action is "create", "update" or "none".
	Action string
	// Lines are the settings that differ, one per line: "+ path: value" (new),
	// "- path: value" (gone), "~ path: old -> new"; a secret shows as (secret).
	Lines []string
	// Entry is the tenant as stored after the change (nil on a dry run).
	Entry *Entry
}

// Apply makes tenant id's stored settings those of t, a tenant as the
// configuration file declares it (secrets included): it creates the tenant,
// updates it when a setting differs, and leaves it alone otherwise, so that
// applying the same file twice changes nothing. dryRun only reports. The
// file is the whole tenant: a secret it leaves out is removed, not kept as
// a replace through the admin API keeps it, so that the difference shown is
// what is stored (a leaked LINE channelSecret deleted from the file stops
// signing tokens). A write that another one (a replica applying the same
// file as it starts) overtook between the read and the write is applied
// again from a new read, which finds the tenant as t says or what still
// differs.
func (c *Catalog) Apply(ctx context.Context, id string, t *config.Tenant, dryRun bool) (*Change, error) {
	next, err := t.Document()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ch, err := c.apply(ctx, id, next, dryRun)
		// Each other writer overtakes a tenant's write once: a few attempts do.
		if (errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrConflict)) && attempt < applyAttempts {
			continue
		}
		return ch, err
	}
}

// applyAttempts bounds Apply's reads of one tenant: one, then one for each
// replica that overtook it (replicas starting together).
const applyAttempts = 8

// apply is one attempt of Apply of the document next.
func (c *Catalog) apply(ctx context.Context, id string, next map[string]any, dryRun bool) (*Change, error) {
	stored, err := c.store.Tenant(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var prev map[string]any
	if stored != nil {
		if prev, err = c.full(stored); err != nil {
			return nil, err
		}
	}
	ch := &Change{ID: id, Action: "create", Lines: diff(prev, next)}
	switch {
	case stored != nil && len(ch.Lines) == 0:
		ch.Action = "none"
		if !dryRun {
			ch.Entry, err = c.entry(stored)
		}
		return ch, err
	case stored != nil:
		ch.Action = "update"
	}
	if _, err := c.prepare(id, next, nil); err != nil {
		return nil, err
	}
	if dryRun {
		return ch, nil
	}
	if stored == nil {
		ch.Entry, err = c.Create(ctx, id, next)
	} else {
		ch.Entry, err = c.replace(ctx, id, next, store.StampOf(stored), false)
	}
	return ch, err
}

// diff lists the settings that differ from prev (nil: none) to next.
func diff(prev, next map[string]any) []string {
	before, after := flatten(prev), flatten(next)
	secret := secretSet(prev)
	for p := range secretSet(next) {
		secret[p] = true
	}
	show := func(path, v string) string {
		if secret[path] {
			return "(secret)"
		}
		return shown(v)
	}
	var out []string
	for _, p := range slices.Sorted(maps.Keys(after)) {
		old, had := before[p]
		switch {
		case !had:
			out = append(out, fmt.Sprintf("+ %s: %s", p, show(p, after[p])))
		case old != after[p]:
			was, is := show(p, old), show(p, after[p])
			line := fmt.Sprintf("~ %s: %s -> %s", p, was, is)
			if was == is && !secret[p] {
				line += " (" + hiddenChange(old, after[p]) + " changed)" // still a change to see
			}
			out = append(out, line)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(before)) {
		if _, kept := after[p]; !kept {
			out = append(out, fmt.Sprintf("- %s: %s", p, show(p, before[p])))
		}
	}
	return out
}

// shown is the JSON leaf v as the diff shows it: a URL as every message
// names it (egress.Where), without the query or user information where a
// credential may ride (https://fn.azurewebsites.net/api/hook?code=…).
func shown(v string) string {
	u := leafURL(v)
	if u == nil {
		return v
	}
	out, _ := store.PlainJSON(egress.Where(u))
	return out
}

// leafURL is the absolute URL the JSON leaf v holds, or nil.
func leafURL(v string) *url.URL {
	var s string
	if json.Unmarshal([]byte(v), &s) != nil {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil
	}
	return u
}

// hiddenChange names what differs between two URL leaves that shown shows alike.
func hiddenChange(a, b string) string {
	ua, ub := leafURL(a), leafURL(b)
	switch {
	case ua.RawQuery != ub.RawQuery:
		return "query"
	case ua.User.String() != ub.User.String():
		return "user information"
	case ua.Fragment != ub.Fragment:
		return "fragment"
	}
	return "spelling"
}

// secretSet is the set of the secret paths of a full document.
func secretSet(doc map[string]any) map[string]bool {
	out := map[string]bool{}
	if doc == nil {
		return out
	}
	cp, err := config.ParseDocument(mustJSON(doc))
	if err != nil {
		return out
	}
	for _, p := range config.SecretPaths(config.SplitSecrets(cp)) {
		out[p] = true
	}
	return out
}

// flatten is a document as its leaf settings by path, each as JSON.
func flatten(doc map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if len(v) == 0 && at != "" {
				out[at] = "{}"
			}
			for k, e := range v {
				p := k
				if at != "" {
					p = at + "." + k
				}
				walk(e, p)
			}
		case []any:
			if len(v) == 0 {
				out[at] = "[]"
			}
			for i, e := range v {
				walk(e, fmt.Sprintf("%s[%d]", at, i))
			}
		default:
			// As written: "Acme <no-reply@acme.example>", not \u003c…\u003e.
			out[at], _ = store.PlainJSON(v)
		}
	}
	if doc != nil {
		walk(doc, "")
	}
	return out
}
