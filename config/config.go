// Package config is customerd's one typed configuration: read once from a YAML
// file and the environment, filled with defaults, validated with messages that
// name the bad setting, so that a bad config never starts a half-working server.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.yaml.in/yaml/v3"

	"github.com/customerd/customerd/egress"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/sender"
)

// Config is the whole configuration of one customerd process.
type Config struct {
	// Addr is the API's listen address (CUSTOMERD_ADDR).
	Addr string `yaml:"addr"`
	// MetricsAddr is the listen address of /metrics, apart from the API so
	// that it is not public with it (CUSTOMERD_METRICS_ADDR).
	MetricsAddr string `yaml:"metricsAddr"`
	// AdminAddr is the listen address of the administration API and its
	// /docs, apart from the API: keep it private (CUSTOMERD_ADMIN_ADDR).
	AdminAddr string `yaml:"adminAddr"`
	// PublicURL is where clients reach the service; tokens' iss is PublicURL/api/{tenantId}.
	PublicURL string `yaml:"publicURL"`
	// Database selects and tunes the database.
	Database Database `yaml:"database"`
	// Secret encrypts signing keys at rest and keys the code hashes (CUSTOMERD_SECRET).
	Secret string `yaml:"secret"`
	// SecretFile keeps a generated secret when Secret is empty (the demo default).
	SecretFile string `yaml:"secretFile"`
	// Log sets the log level and format.
	Log Log `yaml:"log"`
	// ShutdownTimeout bounds how long in-flight requests may finish on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// Events tunes the dispatcher that delivers customer events to webhooks.
	Events Events `yaml:"events"`
	// Tenants by id, the {tenantId} of every path; applied to the database at start.
	Tenants map[string]*Tenant `yaml:"tenants"`
	// TrustedProxies are the CIDRs (or addresses) of the proxies whose
	// X-Forwarded-For names the client (CUSTOMERD_TRUSTED_PROXIES, comma-separated);
	// none by default: the client is the TCP peer.
	TrustedProxies []string `yaml:"trustedProxies"`
	// TokenCache bounds the cache of verified bearer tokens.
	TokenCache TokenCache `yaml:"tokenCache"`
	// GCPercent is the Go garbage collector's target (GOGC): how much the
	// heap may grow past what is live before a collection. 200 by default;
	// the GOGC environment variable, when set, wins.
	GCPercent int `yaml:"gcPercent"`
	// MemoryLimitMiB is the Go runtime's soft memory limit (GOMEMLIMIT):
	// near it the collector runs more often, whatever gcPercent allows.
	// 0 (the default): none. The GOMEMLIMIT environment variable, when
	// set, wins.
	MemoryLimitMiB int `yaml:"memoryLimitMiB"`

	// Demo is set when no configuration file was given: the demo tenant, codes in the log.
	Demo bool `yaml:"-"`
	// Env names the environment variable that set a setting over the file,
	// by the setting's path ("adminAddr": "CUSTOMERD_ADMIN_ADDR").
	Env map[string]string `yaml:"-"`
}

// TokenCache bounds the cache of bearer tokens already verified: a token
// found there skips its signature check (never the account read).
type TokenCache struct {
	// MaxEntries bounds the tokens kept (default 50000; -1 turns the cache off).
	MaxEntries int `yaml:"maxEntries"`
	// MaxMemoryMiB bounds the memory their entries take (default 16).
	MaxMemoryMiB int `yaml:"maxMemoryMiB"`
}

// Events tunes the webhook dispatcher.
type Events struct {
	// PollInterval is how often the outbox is read when it was found empty
	// (default 1s); a failed event is never retried sooner.
	PollInterval time.Duration `yaml:"pollInterval"`
	// Lease is how long one replica owns an event it is delivering (default 1m);
	// after it, another replica may deliver the event again.
	Lease time.Duration `yaml:"lease"`
	// Timeout bounds one delivery to one endpoint (default 10s, less than Lease).
	Timeout time.Duration `yaml:"timeout"`
}

// Webhooks are where a tenant's customer events go.
type Webhooks struct {
	Endpoints []Endpoint `yaml:"endpoints"`
	// MaxAge: an event still undelivered this long after it happened is dead (default 24h).
	MaxAge time.Duration `yaml:"maxAge"`
	// RetryBase and RetryMax bound the exponential backoff between attempts (default 1s and 10m).
	RetryBase time.Duration `yaml:"retryBase"`
	RetryMax  time.Duration `yaml:"retryMax"`
}

// Endpoint is one webhook receiver.
type Endpoint struct {
	URL string `yaml:"url"`
	// Secret keys the X-Customerd-Signature HMAC-SHA256 (at least 16 characters).
	Secret string `yaml:"secret"`
	// Events it receives (default every type).
	Events []string `yaml:"events"`
	// AllowPrivateNetwork lets URL be on a private or loopback address (and
	// plain http there); https on a public address otherwise.
	AllowPrivateNetwork bool `yaml:"allowPrivateNetwork"`
}

// Database selects the database.
type Database struct {
	// URL is postgres://… or sqlite://PATH (CUSTOMERD_DATABASE_URL).
	URL string `yaml:"url"`
	// MaxOpenConns bounds the connection pool (PostgreSQL, and SQLite
	// readers); 0 is the database's default: 32 on PostgreSQL, 8 readers
	// on SQLite.
	MaxOpenConns int `yaml:"maxOpenConns"`
	// SQLiteMmapMiB is how much of a SQLite database file each connection
	// reads through a memory mapping of it; 0 (the default) maps none.
	SQLiteMmapMiB int `yaml:"sqliteMmapMiB"`
}

// maxSQLiteMmapMiB is the most SQLite maps, 2 GiB less 64 KiB, in whole MiB.
const maxSQLiteMmapMiB = 2047

// Log sets the logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Tenant is one brand's settings.
type Tenant struct {
	DefaultCountry  string `yaml:"defaultCountry"`
	DefaultLanguage string `yaml:"defaultLanguage"`
	PhoneRegion     string `yaml:"phoneRegion"`
	// Identifier is what identifies an account on anonymous creates: email or phoneNumber.
	Identifier     string        `yaml:"identifier"`
	TokenLifetime  time.Duration `yaml:"tokenLifetime"`
	RequiredFields []string      `yaml:"requiredFields"`
	// Senders deliver one-time codes, by channel (email, sms).
	Senders map[sender.Channel]sender.Config `yaml:"senders"`
	// Providers enabled for authenticate?provider=NAME, by name.
	Providers map[string]Provider `yaml:"providers"`
	// OTP sets the one-time code limits.
	OTP OTP `yaml:"otp"`
	// Flows the tenant declares, by name; one named preregistration or
	// activation replaces the default of that name.
	Flows map[string][]flows.StepConfig `yaml:"flows"`
	// CheckInPolicy is preregistration's: none (the default), partial or full.
	CheckInPolicy string `yaml:"checkInPolicy"`
	// CheckInPage is the https page a partial check-in link opens, with
	// challengeId and code as query parameters; it exchanges them through
	// authenticate?provider=otp.
	CheckInPage string `yaml:"checkInPage"`
	// ActivationFields are what the default activation flow requires (default firstName, lastName).
	ActivationFields []string `yaml:"activationFields"`
	// Webhooks receive the tenant's customer events.
	Webhooks Webhooks `yaml:"webhooks"`
}

// Provider is one provider's settings: its type and the type's own settings,
// which the provider registry decodes into the type's typed config.
type Provider struct {
	Type     string         `yaml:"type"`
	Settings map[string]any `yaml:",inline"`
}

// OTP holds the one-time code limits of a tenant.
type OTP struct {
	CodeLifetime      time.Duration `yaml:"codeLifetime"`
	MaxAttempts       int           `yaml:"maxAttempts"`
	ResendInterval    time.Duration `yaml:"resendInterval"`
	MaxFailuresPerDay int           `yaml:"maxFailuresPerDay"`
}

// DefaultDatabaseURL is the embedded database used when nothing else is configured.
const DefaultDatabaseURL = "sqlite://./data/customerd.db"

// DefaultMetricsAddr keeps /metrics on loopback unless the operator opens it.
const DefaultMetricsAddr = "127.0.0.1:9464"

// DefaultAdminAddr keeps the administration API on loopback unless the operator opens it.
const DefaultAdminAddr = "127.0.0.1:8081"

// DefaultGCPercent lets the heap grow to three times what is live before a
// collection, where Go's default is twice: customerd's live heap is small
// (a few MiB) and its requests allocate quickly, so at 100 the collector
// ran several times a second under load and took a tenth of customerd's
// CPU; at 200 it takes about half as much, for some 10 MiB more memory.
const DefaultGCPercent = 200

// minMemoryLimitMiB is the least memoryLimitMiB: below it the limit would
// sit under what customerd holds live with its caches full, and the
// collector would run without end (Go then caps it at half the CPU).
// maxMemoryLimitMiB keeps the limit in bytes within an int64 (1 PiB).
const (
	minMemoryLimitMiB = 64
	maxMemoryLimitMiB = 1 << 30
)

// minSecretChars is the fewest different characters a secret should have:
// 32 of one character (or two) seal nothing anyone could not guess. A weaker
// one is warned about, not refused: what it sealed already cannot be opened
// with another, and refusing it would stop a running deployment for good.
const minSecretChars = 8

// WeakSecretWarning is what serve and config check say of a secret that is
// not VariedSecret.
var WeakSecretWarning = fmt.Sprintf("secret: fewer than %d different characters, easy to guess; a new deployment should use a random one (openssl rand -hex 32)", minSecretChars)

// VariedSecret reports whether s has at least minSecretChars different
// characters.
func VariedSecret(s string) bool {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[r] = true
	}
	return len(seen) >= minSecretChars
}

// Check judges what config cannot judge itself (the provider settings, which
// only the provider registry knows); Load gives its problems their sources.
type Check func(*Config) Problems

// env are the environment variables that override a setting.
var env = []struct {
	name, path string
	set        func(*Config, string)
}{
	{"CUSTOMERD_ADDR", "addr", func(c *Config, v string) { c.Addr = v }},
	{"CUSTOMERD_METRICS_ADDR", "metricsAddr", func(c *Config, v string) { c.MetricsAddr = v }},
	{"CUSTOMERD_ADMIN_ADDR", "adminAddr", func(c *Config, v string) { c.AdminAddr = v }},
	{"CUSTOMERD_DATABASE_URL", "database.url", func(c *Config, v string) { c.Database.URL = v }},
	{"CUSTOMERD_PUBLIC_URL", "publicURL", func(c *Config, v string) { c.PublicURL = v }},
	{"CUSTOMERD_SECRET", "secret", func(c *Config, v string) { c.Secret = v }},
	{"CUSTOMERD_LOG_LEVEL", "log.level", func(c *Config, v string) { c.Log.Level = v }},
	{"CUSTOMERD_LOG_FORMAT", "log.format", func(c *Config, v string) { c.Log.Format = v }},
	{"CUSTOMERD_TRUSTED_PROXIES", "trustedProxies", func(c *Config, v string) { c.TrustedProxies = strings.Split(v, ",") }},
}

// Load reads the file at path, applies the environment and the defaults, and
// validates the result, with checks. With no file (path "") it is the demo
// set-up: one tenant, demo, whose codes are written to the log. The error is
// Problems: every bad setting found, each named by its path and its source.
func Load(path string, getenv func(string) string, checks ...Check) (*Config, error) {
	c := &Config{Demo: path == ""}
	src := sources{}
	var (
		problems Problems
		decoded  = true
	)
	if path != "" {
		problems, decoded = c.read(path, src)
	}
	c.Env = map[string]string{}
	for _, e := range env {
		if v := getenv(e.name); v != "" {
			e.set(c, v)
			src[e.path] = e.name
			c.Env[e.path] = e.name
		}
	}
	if decoded {
		// What the file got wrong is said once: a bad value stays out of the
		// settings (its default stands in) and is not judged again.
		c.fill()
		judged := c.problems()
		for _, check := range checks {
			judged = append(judged, check(c)...)
		}
		for _, p := range judged {
			if !problems.cover(p.Path) {
				problems = append(problems, p)
			}
		}
	}
	for i, p := range problems {
		if p.Source == "" {
			problems[i].Source = src.of(p.Path)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return c, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// notYAML is the problem of a file the YAML parser refused, err, named by
// the line where the file stops being YAML: the one after the longest
// beginning of it that parses. The parser's own line is where the block
// around the mistake began, one less (a key indented wrong on line 40 of a
// tenants file was "line 1").
func notYAML(path string, raw []byte, err error) Problem {
	msg, line := strings.TrimPrefix(err.Error(), "yaml: "), ""
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		msg, line = m[2], m[1]
	}
	if n := firstBadLine(raw); n > 0 {
		line = strconv.Itoa(n)
	}
	if line != "" {
		path += ":" + line
	}
	return Problem{Message: "not YAML: " + msg, Source: path}
}

// firstBadLine is the line after the longest beginning of raw, in whole
// lines, that parses as YAML; 0 when finding it would parse more than a
// few MiB (a file that large keeps the parser's line).
func firstBadLine(raw []byte) int {
	var ends []int // ends[k]: the length of the first k+1 lines
	for i, b := range raw {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	budget := 16 << 20
	for k := len(ends); k > 0; k-- {
		if k == len(ends) && ends[k-1] == len(raw) {
			continue // the whole file: refused
		}
		prefix := raw[:ends[k-1]]
		if budget -= len(prefix); budget < 0 {
			return 0
		}
		var doc yaml.Node
		if yaml.Unmarshal(prefix, &doc) == nil {
			return k + 1
		}
	}
	return 1
}

// read decodes the file at path into c. Its problems are the file's own: it
// is missing, not YAML (decoded is false), or names unknown settings or
// values of the wrong kind, which stay out of c.
func (c *Config) read(path string, src sources) (problems Problems, decoded bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Problems{{Message: fmt.Sprintf("cannot read the configuration file: %v", err)}}, false
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return Problems{notYAML(path, raw, err)}, false
	}
	if err := decodable(&doc); err != nil {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			return Problems{{Message: "not YAML: " + m[2], Source: path + ":" + m[1]}}, false
		}
		return Problems{{Message: "not YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Source: path}}, false
	}
	if len(doc.Content) == 0 {
		return nil, true // an empty file: every default
	}
	check(path, doc.Content[0], reflect.TypeFor[Config](), "", src, &problems)
	if err := doc.Content[0].Decode(c); err != nil && len(problems) == 0 {
		// What check does not foresee, as the decoder says it.
		return Problems{{Message: strings.TrimPrefix(err.Error(), "yaml: "), Source: path}}, false
	}
	return problems, true
}

// cover reports whether a problem of ps is at path or encloses it.
func (ps Problems) cover(path string) bool {
	for _, p := range ps {
		if p.Path == path || strings.HasPrefix(path, p.Path+".") || strings.HasPrefix(path, p.Path+"[") {
			return true
		}
	}
	return false
}

// fill applies defaults to everything left empty.
func (c *Config) fill() {
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if c.AdminAddr == "" {
		c.AdminAddr = DefaultAdminAddr
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://localhost" + c.Addr
		if host, port, err := net.SplitHostPort(c.Addr); err == nil && host != "" {
			c.PublicURL = "http://" + net.JoinHostPort(host, port)
		}
	}
	if c.Database.URL == "" {
		c.Database.URL = DefaultDatabaseURL
	}
	if c.GCPercent == 0 {
		c.GCPercent = DefaultGCPercent
	}
	if c.Secret == "" && c.SecretFile == "" {
		c.SecretFile = "./data/secret"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.TokenCache.MaxEntries == 0 {
		c.TokenCache.MaxEntries = 50_000
	}
	if c.TokenCache.MaxMemoryMiB == 0 {
		c.TokenCache.MaxMemoryMiB = 16
	}
	if c.Events.PollInterval == 0 {
		c.Events.PollInterval = time.Second
	}
	if c.Events.Lease == 0 {
		c.Events.Lease = time.Minute
	}
	if c.Events.Timeout == 0 {
		c.Events.Timeout = 10 * time.Second
	}
	if c.Demo {
		c.Tenants = map[string]*Tenant{DemoTenant: {}}
	}
	for id, t := range c.Tenants {
		if t == nil { // "acme:" with nothing under it
			t = &Tenant{}
			c.Tenants[id] = t
		}
		t.fill()
	}
}

func (t *Tenant) fill() {
	if t.DefaultCountry == "" {
		t.DefaultCountry = "FR"
	}
	if t.DefaultLanguage == "" {
		t.DefaultLanguage = "fr"
	}
	if t.PhoneRegion == "" {
		t.PhoneRegion = t.DefaultCountry
	}
	t.DefaultCountry = strings.ToUpper(t.DefaultCountry)
	t.PhoneRegion = strings.ToUpper(t.PhoneRegion)
	if t.Identifier == "" {
		t.Identifier = "email"
	}
	if t.TokenLifetime == 0 {
		t.TokenLifetime = 24 * time.Hour
	}
	if len(t.Senders) == 0 {
		t.Senders = defaultSenders()
	}
	if len(t.Providers) == 0 {
		t.Providers = map[string]Provider{"otp": {Type: "otp"}}
	}
	if t.OTP.CodeLifetime == 0 {
		t.OTP.CodeLifetime = 10 * time.Minute
	}
	if t.OTP.MaxAttempts == 0 {
		t.OTP.MaxAttempts = 5
	}
	if t.OTP.ResendInterval == 0 {
		t.OTP.ResendInterval = 60 * time.Second
	}
	if t.OTP.MaxFailuresPerDay == 0 {
		t.OTP.MaxFailuresPerDay = 100
	}
	if t.CheckInPolicy == "" {
		t.CheckInPolicy = flows.CheckInNone
	}
	if t.ActivationFields == nil {
		t.ActivationFields = []string{"firstName", "lastName"}
	}
	if t.Webhooks.MaxAge == 0 {
		t.Webhooks.MaxAge = 24 * time.Hour
	}
	if t.Webhooks.RetryBase == 0 {
		t.Webhooks.RetryBase = time.Second
	}
	if t.Webhooks.RetryMax == 0 {
		t.Webhooks.RetryMax = 10 * time.Minute
	}
}

// FlowDefaults are what the default flows take from the tenant.
func (t *Tenant) FlowDefaults() flows.Defaults {
	return flows.Defaults{CheckInPolicy: t.CheckInPolicy, ActivationFields: t.ActivationFields}
}

var (
	tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	alpha2          = regexp.MustCompile(`^[A-Z]{2}$`)
	languageTag     = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
)

// problems judges every setting; a problem's path names the setting in the file.
func (c *Config) problems() Problems {
	var ps Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	for _, a := range []struct{ path, addr string }{{"addr", c.Addr}, {"metricsAddr", c.MetricsAddr}, {"adminAddr", c.AdminAddr}} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil {
			add(a.path, "%q is not host:port (:8080, 127.0.0.1:9464)", a.addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add(a.path, "%q: the port is not a number from 0 to 65535", a.addr)
		}
	}
	if _, port, _ := net.SplitHostPort(c.Addr); c.MetricsAddr == c.Addr && port != "0" {
		add("metricsAddr", "%q is addr too: /metrics needs a listener of its own", c.MetricsAddr)
	}
	for _, other := range []struct{ path, addr string }{{"addr", c.Addr}, {"metricsAddr", c.MetricsAddr}} {
		if _, port, _ := net.SplitHostPort(c.AdminAddr); c.AdminAddr == other.addr && port != "0" {
			add("adminAddr", "%q is %s too: the administration API needs a listener of its own", c.AdminAddr, other.path)
		}
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("publicURL", "%q is not an http(s) URL", c.PublicURL)
	}
	switch path, sqlite := c.Database.SQLitePath(); {
	case !sqlite && !strings.HasPrefix(c.Database.URL, "postgres://") && !strings.HasPrefix(c.Database.URL, "postgresql://"):
		add("database.url", "%q is not postgres://… or sqlite://PATH", c.Database.Redacted())
	case sqlite && path == "":
		add("database.url", "sqlite:// needs a path, e.g. sqlite://./data/customerd.db")
	case !sqlite:
		if reason := postgresURLProblem(c.Database.URL); reason != "" {
			add("database.url", "%s: %s", c.Database.Redacted(), reason)
		}
	}
	if c.GCPercent < 25 {
		add("gcPercent", "%d: must be at least 25 (a collection each time the heap grows by a quarter)", c.GCPercent)
	}
	if m := c.MemoryLimitMiB; m != 0 && (m < minMemoryLimitMiB || m > maxMemoryLimitMiB) {
		add("memoryLimitMiB", "%d: must be 0 (no limit) or between %d and %d", m, minMemoryLimitMiB, maxMemoryLimitMiB)
	}
	if c.Database.MaxOpenConns < 0 {
		add("database.maxOpenConns", "%d: must be at least 1 (or 0 for the database's default)", c.Database.MaxOpenConns)
	}
	if m := c.Database.SQLiteMmapMiB; m < 0 || m > maxSQLiteMmapMiB {
		add("database.sqliteMmapMiB", "%d: must be between 0 (no mapping) and %d", m, maxSQLiteMmapMiB)
	}
	if c.Secret != "" && len(c.Secret) < 32 {
		add("secret", "must be at least 32 characters (openssl rand -hex 32 makes one)")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		add("log.format", "%q is not one of json, text", c.Log.Format)
	}
	if c.ShutdownTimeout < 0 {
		add("shutdownTimeout", "%s: must not be negative", c.ShutdownTimeout)
	}
	if c.TokenCache.MaxEntries < -1 {
		add("tokenCache.maxEntries", "%d: must be at least 1, or -1 for no cache", c.TokenCache.MaxEntries)
	}
	if c.TokenCache.MaxMemoryMiB < 1 {
		add("tokenCache.maxMemoryMiB", "%d: must be at least 1", c.TokenCache.MaxMemoryMiB)
	}
	if c.Events.PollInterval < time.Millisecond {
		add("events.pollInterval", "%s: must be at least 1ms", c.Events.PollInterval)
	}
	if c.Events.Timeout <= 0 || c.Events.Lease <= c.Events.Timeout {
		add("events.lease", "%s: must be longer than events.timeout (%s)", c.Events.Lease, c.Events.Timeout)
	}
	if len(c.Tenants) == 0 {
		add("tenants", "none declared: a configuration file declares at least one tenant (without a file, customerd serves the demo tenant)")
	}
	for i, p := range c.TrustedProxies {
		if n, err := proxyNet(p); err != nil {
			add(fmt.Sprintf("trustedProxies[%d]", i), "%q is not a CIDR such as 10.0.0.0/8 or an IP address", p)
		} else if everyAddress(n) {
			add(fmt.Sprintf("trustedProxies[%d]", i), "%q is every address: any client could name itself in X-Forwarded-For; name your proxies' range, e.g. 10.0.0.0/8", p)
		}
	}
	for _, id := range c.TenantIDs() {
		ps = append(ps, c.Tenants[id].problems("tenants."+id, id)...)
	}
	return ps
}

// MaxTokenLifetime is the longest token lifetime a tenant may set.
const MaxTokenLifetime = 30 * 24 * time.Hour

// Problems judges the filled settings of tenant id as the file's tenants
// are judged: every bad setting, named by its path (tenants.ID.…). The admin
// API judges a tenant by it.
func (t *Tenant) Problems(id string) Problems { return t.problems("tenants."+id, id) }

func (t *Tenant) problems(at, id string) Problems {
	var ps Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: join(at, path), Message: fmt.Sprintf(format, args...)})
	}
	if !tenantIDPattern.MatchString(id) {
		add("", "%q: tenant ids are 1-64 lower-case letters, digits, '-' or '_'", id)
	}
	if !alpha2.MatchString(t.DefaultCountry) {
		add("defaultCountry", "%q is not an ISO 3166-1 alpha-2 code", t.DefaultCountry)
	}
	if !alpha2.MatchString(t.PhoneRegion) {
		add("phoneRegion", "%q is not an ISO 3166-1 alpha-2 code", t.PhoneRegion)
	}
	if !languageTag.MatchString(t.DefaultLanguage) {
		add("defaultLanguage", "%q is not a language tag", t.DefaultLanguage)
	}
	if t.Identifier != "email" && t.Identifier != "phoneNumber" {
		add("identifier", "%q is not one of email, phoneNumber", t.Identifier)
	}
	if t.TokenLifetime < time.Minute || t.TokenLifetime > MaxTokenLifetime {
		add("tokenLifetime", "%s: must be between 1m and 720h", t.TokenLifetime)
	}
	for _, ch := range slices.Sorted(maps.Keys(t.Senders)) {
		s, path := t.Senders[ch], "senders."+string(ch)
		switch {
		case ch != sender.Email && ch != sender.SMS:
			add(path, "unknown channel, have [email sms]")
		case ch == sender.SMS && s.Type == "smtp":
			add(path+".type", "an smtp sender cannot send sms")
		case ch == sender.Email && s.Type == "twilio":
			add(path+".type", "a twilio sender cannot send email")
		case ch == sender.Email && len(s.Countries) > 0:
			add(path+".countries", "only sms senders have a country allow-list")
		default:
			if err := sender.Builtin().Validate(s); err != nil {
				ps = append(ps, ProblemAt(join(at, path), err))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Providers)) {
		if t.Providers[name].Type == "" {
			add("providers."+name+".type", "required")
		}
	}
	o := t.OTP
	if o.CodeLifetime < time.Minute || o.CodeLifetime > time.Hour {
		add("otp.codeLifetime", "%s: must be between 1m and 1h", o.CodeLifetime)
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > 10 {
		add("otp.maxAttempts", "%d: must be between 1 and 10", o.MaxAttempts)
	}
	if o.ResendInterval < 0 || o.ResendInterval > time.Hour {
		// The janitor deletes throttles a day old: a longer interval would not hold.
		add("otp.resendInterval", "%s: must be between 0 and 1h", o.ResendInterval)
	}
	if o.MaxFailuresPerDay < 1 || o.MaxFailuresPerDay > maxFailuresPerDay {
		// Each failure is a guess at a 6-digit code: 100,000 a day is one
		// chance in ten of guessing an address's code.
		add("otp.maxFailuresPerDay", "%d: must be between 1 and %d", o.MaxFailuresPerDay, maxFailuresPerDay)
	}
	// The page's links carry a challenge id and its code: over plain http,
	// whoever is on the shopper's network signs in with them. Partial
	// check-in sends them, and so does a flow's link step (challenge: link,
	// checkIn: partial) under any policy.
	https := func() bool {
		u, err := url.Parse(t.CheckInPage)
		return err == nil && u.Scheme == "https" && u.Host != ""
	}
	switch t.CheckInPolicy {
	case flows.CheckInNone, flows.CheckInFull:
		if t.CheckInPage != "" && !https() {
			add("checkInPage", "%q: the page check-in links open must be an https address", t.CheckInPage)
		}
	case flows.CheckInPartial:
		if !https() {
			add("checkInPage", "%q: partial check-in needs the https address of the page its links open", t.CheckInPage)
		}
	default:
		add("checkInPolicy", "%q is not one of none, partial, full", t.CheckInPolicy)
	}
	if _, err := flows.Build(t.Flows, t.FlowDefaults()); err != nil {
		ps = append(ps, ProblemAt(join(at, "flows"), err))
	}
	w := t.Webhooks
	if w.MaxAge < time.Second || w.RetryBase <= 0 || w.RetryMax < w.RetryBase {
		add("webhooks", "want maxAge of at least 1s and 0 < retryBase <= retryMax (have %s, %s, %s)", w.MaxAge, w.RetryBase, w.RetryMax)
	}
	// Every event is posted to every endpoint at once: their number is what
	// one anonymous sign-up costs the service and the receivers.
	if len(w.Endpoints) > maxEndpoints {
		add("webhooks.endpoints", "%d endpoints, at most %d", len(w.Endpoints), maxEndpoints)
	}
	first := map[string]int{} // the index of each url's first endpoint
	for i, e := range w.Endpoints {
		path := fmt.Sprintf("webhooks.endpoints[%d]", i)
		if err := egress.CheckURL(e.URL, e.AllowPrivateNetwork); err != nil {
			add(path+".url", "%v", err)
		}
		// The url is not quoted: a receiver may take its credential in it.
		if j, ok := first[e.URL]; ok {
			add(path+".url", "the url of webhooks.endpoints[%d]: one endpoint per url, listing every event type it wants", j)
		} else {
			first[e.URL] = i
		}
		if len(e.Secret) < 16 {
			add(path+".secret", "must be at least 16 characters")
		}
		for _, typ := range e.Events {
			if !slices.Contains(flows.EventTypes, typ) {
				add(path+".events", "unknown event type %q, have [%s]", typ, strings.Join(flows.EventTypes, " "))
			}
		}
	}
	return ps
}

// LogChannels are the channels whose codes the tenant's sender writes to
// the log, in order (of a filled tenant: one that left senders out has a
// log sender on both).
func (t *Tenant) LogChannels() []sender.Channel {
	var out []sender.Channel
	for _, ch := range slices.Sorted(maps.Keys(t.Senders)) {
		if t.Senders[ch].Type == "log" {
			out = append(out, ch)
		}
	}
	return out
}

// UnguardedSMS are the tenants whose SMS sender (not log) has neither a
// country allow-list nor a daily budget: anyone may make it send codes to
// any number of any country, one per number and minute (SMS pumping).
func (c *Config) UnguardedSMS() []string {
	var out []string
	for _, id := range c.TenantIDs() {
		if s, ok := c.Tenants[id].Senders[sender.SMS]; ok && s.Type != "log" && len(s.Countries) == 0 && s.DailyBudget == 0 {
			out = append(out, id)
		}
	}
	return out
}

// DemoTenant is the tenant the demo set-up (no configuration file) serves.
const DemoTenant = "demo"

// maxFailuresPerDay bounds otp.maxFailuresPerDay.
const maxFailuresPerDay = 100_000

// maxEndpoints bounds webhooks.endpoints (maxItems in admin.openapi.yaml).
const maxEndpoints = 10

// SMSPumpingWarning is what serve and config check say of an UnguardedSMS tenant.
const SMSPumpingWarning = "sms sender with neither countries nor dailyBudget: anyone can make it send codes to any number (SMS pumping); set senders.sms.countries and senders.sms.dailyBudget"

// PlainPublicURL reports whether publicURL is plain http on a host other
// than loopback: the tokens' iss, where verifiers find the keys, then
// travels unprotected.
func (c *Config) PlainPublicURL() bool {
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	return !egress.IsLoopback(host) && !strings.HasSuffix(host, ".localhost")
}

// PlainPublicURLWarning is what serve and config check say of a PlainPublicURL.
const PlainPublicURLWarning = "publicURL: plain http on a host other than loopback: tokens' iss and the keys verifiers fetch from it (/.well-known/jwks.json) travel unprotected; use https"

// SQLitePath is the file of a sqlite:// database URL; ok is false for any other URL.
func (d Database) SQLitePath() (path string, ok bool) {
	return strings.CutPrefix(d.URL, "sqlite://")
}

// postgresURLProblem is why pgx could not connect with u, read as it reads
// it (no connection made); "" when it reads. Only the reason is kept: pgx's
// message quotes the URL with a password of the query in clear.
func postgresURLProblem(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		var escape url.EscapeError
		var uerr *url.Error
		if errors.As(err, &escape) || !errors.As(err, &uerr) || misread(u) {
			return "not a URL (a character of the password, say, that is not percent-encoded?)"
		}
		return uerr.Err.Error() // "invalid port …" of what follows the user information
	}
	if misread(u) || parsed.Fragment != "" {
		return "not read as written: an @ after the host, or a fragment (percent-encode a password's /, ? and #, and an @ in a query: %2F, %3F, %23, %40)"
	}
	_, err = pgconn.ParseConfig(u)
	if err == nil {
		return ""
	}
	if _, reason, ok := strings.Cut(err.Error(), "`: "); ok {
		return reason
	}
	return "not a PostgreSQL URL"
}

// misread is whether Go's parser (and pgx, which uses it) may end u's user
// information before its last @: at a /, ? or # of a password that is not
// percent-encoded, which reads the password's beginning as a host or a port
// (or, where the password holds an @ before it, as a user, a host and a
// database) and its rest as a path, a query or a fragment, where a message
// shows it. Any @ after the host is taken for one: one in a database's name
// or a query's value is written %40.
func misread(u string) bool {
	_, rest, _ := strings.Cut(u, "://")
	end := strings.IndexAny(rest, "/?#")
	return end >= 0 && strings.Contains(rest[end:], "@")
}

// Redacted is the database URL without its password, for logs and messages.
func (d Database) Redacted() string {
	if _, ok := d.SQLitePath(); ok {
		return d.URL
	}
	if !strings.Contains(d.URL, "://") {
		// A libpq key/value connection string (host=… password=…), which
		// is refused quoting it: not read as a URL, where a space or a #
		// in the password would hide where it ends.
		return keyValuePassword.ReplaceAllString(d.URL, "${1}xxxxx")
	}
	u, err := url.Parse(d.URL)
	if err != nil || misread(d.URL) || u.Fragment != "" {
		// A fragment is the tail of a query's password holding a #.
		return "(an unparsable URL)"
	}
	// pgx also takes the password, and a client key's, from the query.
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	// A pair the query's parser drops (one with a semicolon) or spells in
	// capitals is shown as written: its value goes too.
	return queryPassword.ReplaceAllString(u.Redacted(), "${1}xxxxx")
}

var (
	keyValuePassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)`)
	queryPassword    = regexp.MustCompile(`(?i)([?&;]\w*password=)[^&;#]*`)
)

// defaultSenders are the senders of a tenant that sets none: its codes
// go to the log, on both channels.
func defaultSenders() map[sender.Channel]sender.Config {
	return map[sender.Channel]sender.Config{sender.Email: {Type: "log"}, sender.SMS: {Type: "log"}}
}

// TrustedNets are the TrustedProxies as address ranges (Load checked them).
func (c *Config) TrustedNets() []*net.IPNet {
	nets := make([]*net.IPNet, 0, len(c.TrustedProxies))
	for _, p := range c.TrustedProxies {
		if n, err := proxyNet(p); err == nil {
			nets = append(nets, n)
		}
	}
	return nets
}

// proxyNet reads a CIDR, or one address as the range of that address alone.
func proxyNet(s string) (*net.IPNet, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		return n, err
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, errors.New("not an IP address")
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(len(ip)*8, len(ip)*8)}, nil
}

// everyAddress reports whether n holds every IPv4 or every IPv6 address
// (0.0.0.0/0, ::/0, ::ffff:0:0/96, which net.IPNet reads as every IPv4 one).
func everyAddress(n *net.IPNet) bool {
	ones, bits := n.Mask.Size()
	if bits == 8*net.IPv6len && n.IP.To4() != nil {
		ones -= 8 * (net.IPv6len - net.IPv4len)
	}
	return ones <= 0
}

// TenantIDs lists the tenant ids in order.
func (c *Config) TenantIDs() []string {
	return slices.Sorted(maps.Keys(c.Tenants))
}
