package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A tenant's document is its block of the configuration file as a JSON tree
// (objects, arrays, strings, numbers, booleans): what the admin API and the
// database hold. It is read with the file's own decoder, so a tenant is
// judged the same way wherever it comes from.

// DecodeTenant reads tenant id from its document as the file's tenants are
// read (an unknown setting or a value of the wrong kind is a Problem named by
// its path) and fills the defaults. It does not judge the values: see
// Tenant.Problems.
func DecodeTenant(id string, doc map[string]any) (*Tenant, error) {
	raw, err := yaml.Marshal(plain(doc))
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	t := &Tenant{}
	if len(n.Content) > 0 {
		var ps Problems
		check("", n.Content[0], reflect.TypeFor[Tenant](), "tenants."+id, sources{}, &ps)
		if len(ps) > 0 {
			for i := range ps {
				ps[i].Source = "" // a document has no lines to point at
			}
			return nil, ps
		}
		if err := n.Content[0].Decode(t); err != nil {
			return nil, Problems{{Path: "tenants." + id, Message: strings.TrimPrefix(err.Error(), "yaml: ")}}
		}
	}
	t.fill()
	return t, nil
}

// Document is t as a document: every setting, durations as text ("10m0s").
func (t *Tenant) Document() (map[string]any, error) {
	raw, err := yaml.Marshal(t)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	// Round-trip through JSON: the tree then holds only JSON's own types.
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return ParseDocument(b)
}

// ParseDocument reads a JSON object into a document, numbers kept exact.
func ParseDocument(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc == nil {
		doc = map[string]any{}
	}
	return doc, nil
}

// plain gives the YAML encoder numbers it writes as the file would hold them.
func plain(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = plain(e)
		}
		return out
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	}
	return v
}

// Secrets are the settings a tenant's document never shows once written:
// passwords, tokens and shared secrets. They are kept apart (sealed at rest)
// and put back to build the tenant.

// secretKey reports whether the setting key of the block at path is a secret.
func secretKey(path []string, key string) bool {
	switch {
	case len(path) == 3 && path[0] == "senders":
		return path[2] == "smtp" && key == "password" || path[2] == "twilio" && key == "authToken" ||
			path[2] == "webhook" && key == "secret"
	case len(path) == 2 && path[0] == "providers":
		return key == "secret" || strings.HasSuffix(key, "Secret")
	case len(path) == 3 && path[0] == "webhooks" && path[1] == "endpoints":
		return key == "secret"
	}
	return false
}

// SplitSecrets removes every secret setting from doc and returns them as a
// tree of the same shape holding only them (nil when there is none).
func SplitSecrets(doc map[string]any) map[string]any {
	out, _ := split(doc, nil).(map[string]any)
	return out
}

func split(v any, path []string) any {
	switch v := v.(type) {
	case map[string]any:
		var out map[string]any
		for _, k := range slices.Sorted(maps.Keys(v)) {
			var got any
			if secretKey(path, k) {
				if s, ok := v[k].(string); ok && s != "" {
					got = s
				}
				delete(v, k)
			} else {
				got = split(v[k], append(path, k))
			}
			if got != nil {
				if out == nil {
					out = map[string]any{}
				}
				out[k] = got
			}
		}
		if out == nil {
			return nil
		}
		return out
	case []any:
		var out []any
		for i, e := range v {
			if got := split(e, append(path, "[]")); got != nil {
				if out == nil {
					out = make([]any, len(v))
				}
				out[i] = got
			}
		}
		if out == nil {
			return nil
		}
		return out
	}
	return nil
}

// MergeSecrets puts secrets (as SplitSecrets returned them) back into doc.
func MergeSecrets(doc, secrets map[string]any) {
	merge(doc, secrets)
}

func merge(dst, src any) {
	switch s := src.(type) {
	case map[string]any:
		d, ok := dst.(map[string]any)
		if !ok {
			return
		}
		for k, v := range s {
			if str, isStr := v.(string); isStr {
				d[k] = str
				continue
			}
			merge(d[k], v)
		}
	case []any:
		d, ok := dst.([]any)
		if !ok {
			return
		}
		for i, v := range s {
			if i < len(d) && v != nil {
				merge(d[i], v)
			}
		}
	}
}

// SecretPaths lists the secrets of a SplitSecrets tree by setting path
// ("senders.email.smtp.password", "webhooks.endpoints[0].secret").
func SecretPaths(secrets map[string]any) []string {
	var out []string
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				p := k
				if at != "" {
					p = at + "." + k
				}
				walk(v[k], p)
			}
		case []any:
			for i, e := range v {
				walk(e, fmt.Sprintf("%s[%d]", at, i))
			}
		case string:
			out = append(out, at)
		}
	}
	walk(secrets, "")
	return out
}

// KeepSecrets fills into next, the full reading of sent (a document as
// written), the secrets sent leaves out, from prev, a full document
// (secrets merged): a block of next (an SMTP server, a provider, a webhook
// endpoint) keeps a stored secret only when every other setting of the
// block is unchanged, and one block only, so that a secret is never sent to
// a new destination it was not written for, nor copied. A secret sent as
// null or "" is removed, never kept: leaving it out is the only way to keep
// it, and an optional one (LINE's channelSecret) can then be taken away.
func KeepSecrets(next, prev, sent map[string]any) {
	blocks(next, prev, func(n map[string]any, path []string, twin func() map[string]any) {
		for k, v := range twin() {
			if secretKey(path, k) && (n[k] == nil || n[k] == "") {
				n[k] = v
			}
		}
	})
	removeCleared(next, sent, nil)
}

// removeCleared deletes from next, the full reading of sent, the secrets
// sent sets to null or "".
func removeCleared(next, sent any, path []string) {
	switch s := sent.(type) {
	case map[string]any:
		n, ok := next.(map[string]any)
		if !ok {
			return
		}
		for k, v := range s {
			switch {
			case !secretKey(path, k):
				removeCleared(n[k], v, append(path, k))
			case v == nil || v == "":
				delete(n, k)
			}
		}
	case []any:
		n, ok := next.([]any)
		if !ok {
			return
		}
		for i, v := range s {
			if i < len(n) {
				removeCleared(n[i], v, append(path, "[]"))
			}
		}
	}
}

// NewPrivateBlocks lists the blocks of next (paths such as
// "webhooks.endpoints[]") that allow private networks and are not the same,
// secrets aside, as a block of prev (nil: none) that stands where they stand
// and is no other block's twin already (see blocks).
func NewPrivateBlocks(next, prev map[string]any) []string {
	return newBlocks(next, prev, allowsPrivate)
}

// NewHostBlocks lists, as NewPrivateBlocks does, the new blocks that name a
// file of the service's host (smtp.rootCAs, read when the tenant is built)
// or turn certificate checks off (insecureSkipVerify): settings of the
// operator's machine and tests, not of a brand.
func NewHostBlocks(next, prev map[string]any) []string {
	return newBlocks(next, prev, func(n map[string]any) bool {
		return sets(n, "rootCAs", func(v any) bool { return v != nil && v != "" }) || sets(n, "insecureSkipVerify", isTrue)
	})
}

// NewLogSenders lists the channels of next ("senders.email") whose codes
// its sender writes to the service's log, named so or by default (a tenant
// that leaves senders out has a log sender on both), where prev (nil: none)
// did not: whoever reads the log then signs in as the tenant's shoppers.
func NewLogSenders(next, prev map[string]any) []string {
	var out []string
	for _, ch := range LogChannels(next) {
		if prev == nil || !slices.Contains(LogChannels(prev), ch) {
			out = append(out, "senders."+ch)
		}
	}
	return out
}

// LogChannels are the channels whose codes the tenant of doc writes to the
// log, as DecodeTenant fills its senders.
func LogChannels(doc map[string]any) []string {
	senders, _ := doc["senders"].(map[string]any)
	var out []string
	if len(senders) == 0 {
		for ch, c := range defaultSenders() {
			if c.Type == "log" {
				out = append(out, string(ch))
			}
		}
	}
	for ch, b := range senders {
		if block, ok := b.(map[string]any); ok && sets(block, "type", func(v any) bool { s, ok := v.(string); return ok && strings.EqualFold(s, "log") }) {
			out = append(out, ch)
		}
	}
	slices.Sort(out)
	return out
}

// newBlocks lists the blocks of next that set what set finds and have no
// twin in prev (see blocks).
func newBlocks(next, prev map[string]any, set func(map[string]any) bool) []string {
	var out []string
	blocks(next, prev, func(n map[string]any, path []string, twin func() map[string]any) {
		if set(n) && twin() == nil {
			out = append(out, strings.ReplaceAll(strings.Join(path, "."), ".[]", "[]"))
		}
	})
	slices.Sort(out)
	return out
}

// allowsPrivate reports whether block n sets allowPrivateNetwork.
func allowsPrivate(n map[string]any) bool { return sets(n, "allowPrivateNetwork", isTrue) }

// sets reports whether block n has setting name, spelled in any case, with
// a value on accepts: every decoder of settings wants the exact name, but a
// block a decoder might read past that rule is not let through either.
func sets(n map[string]any, name string, on func(any) bool) bool {
	for k, v := range n {
		if strings.EqualFold(k, name) && on(v) {
			return true
		}
	}
	return false
}

func isTrue(v any) bool { return v == true }

// blocks calls visit with every object of next (after the objects inside
// it), its path and twin, which finds an object of prev that stands where it
// stands and holds the same settings, secrets aside (nil if none): for an
// array element, every element of the stored array stands there, as an
// element may have moved. A stored object is the twin of one object of next
// at most, so that sending a stored block (the operator's private endpoint,
// with its secret) twice makes a new block of the copy.
func blocks(next, prev map[string]any, visit func(n map[string]any, path []string, twin func() map[string]any)) {
	taken := map[uintptr]bool{} // the stored objects found as twins, by address
	var walk func(next any, prevs []any, path []string)
	walk = func(next any, prevs []any, path []string) {
		switch n := next.(type) {
		case map[string]any:
			for k, v := range n {
				var sub []any
				for _, p := range prevs {
					if pm, ok := p.(map[string]any); ok && pm[k] != nil {
						sub = append(sub, pm[k])
					}
				}
				walk(v, sub, append(path, k))
			}
			visit(n, path, func() map[string]any {
				for _, p := range prevs {
					pm, ok := p.(map[string]any)
					if at := reflect.ValueOf(pm).Pointer(); ok && !taken[at] && sameBlock(n, pm, path) {
						taken[at] = true
						return pm
					}
				}
				return nil
			})
		case []any:
			var elems []any
			for _, p := range prevs {
				if pa, ok := p.([]any); ok {
					elems = append(elems, pa...)
				}
			}
			for _, e := range n {
				walk(e, elems, append(path, "[]"))
			}
		}
	}
	walk(next, []any{prev}, nil)
}

// sameBlock reports whether a and b hold the same settings but their secrets.
func sameBlock(a, b map[string]any, path []string) bool {
	strip := func(m map[string]any) map[string]any {
		out := make(map[string]any, len(m))
		for k, v := range m {
			if !secretKey(path, k) {
				out[k] = v
			}
		}
		return out
	}
	return reflect.DeepEqual(normal(strip(a)), normal(strip(b)))
}

// normal makes numbers comparable whatever decoded them.
func normal(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// LoadTenants reads the tenants: block of a YAML file (a configuration file,
// or one that holds only tenants:), checked and filled as Load checks and
// fills the configuration's: every problem named by its path and line.
func LoadTenants(path string) (map[string]*Tenant, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{Message: fmt.Sprintf("cannot read the tenants file: %v", err)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, Problems{notYAML(path, raw, err)}
	}
	// The whole file: a second tenants: block is refused as serve refuses it.
	if err := decodable(&doc); err != nil {
		return nil, Problems{{Message: "not YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Source: path}}
	}
	var block *yaml.Node
	if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
		for i := 0; i+1 < len(doc.Content[0].Content); i += 2 {
			if doc.Content[0].Content[i].Value == "tenants" {
				block = doc.Content[0].Content[i+1]
			}
		}
	}
	if block == nil {
		return nil, Problems{{Path: "tenants", Message: "required: the file names no tenant", Source: path}}
	}
	src := sources{}
	var ps Problems
	check(path, block, reflect.TypeFor[map[string]*Tenant](), "tenants", src, &ps)
	if len(ps) > 0 {
		return nil, ps
	}
	tenants := map[string]*Tenant{}
	if err := block.Decode(&tenants); err != nil {
		return nil, Problems{{Path: "tenants", Message: strings.TrimPrefix(err.Error(), "yaml: "), Source: path}}
	}
	for _, id := range SortedIDs(tenants) {
		if tenants[id] == nil {
			tenants[id] = &Tenant{}
		}
		tenants[id].fill()
		ps = append(ps, tenants[id].Problems(id)...)
	}
	for i, p := range ps {
		ps[i].Source = src.of(p.Path)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return tenants, nil
}

// SortedIDs are the ids of tenants in order.
func SortedIDs(tenants map[string]*Tenant) []string { return slices.Sorted(maps.Keys(tenants)) }
