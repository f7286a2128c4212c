// Package config is customerd's one typed configuration: read once from a YAML
// file and the environment, filled with defaults, validated with messages that
// name the bad setting, so that a bad config never starts a half-working server.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/customerd/customerd/egress"
	"github.com/customerd/customerd/flows"
	"github.com/customerd/customerd/sender"
)

// Config is the whole configuration of one customerd process.
type Config struct {
	// Addr is the listen address (CUSTOMERD_ADDR).
	Addr string `yaml:"addr"`
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
	// Tenants by id, the {tenantId} of every path.
	Tenants map[string]*Tenant `yaml:"tenants"`
	// TrustedProxies are the CIDRs (or addresses) of the proxies whose
	// X-Forwarded-For names the client (CUSTOMERD_TRUSTED_PROXIES, comma-separated);
	// none by default: the client is the TCP peer.
	TrustedProxies []string `yaml:"trustedProxies"`
}

// Events tunes the webhook dispatcher.
type Events struct {
	// PollInterval is how often the outbox is read when it was found empty (default 1s).
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
	// MaxOpenConns bounds the connection pool (PostgreSQL, and SQLite readers).
	MaxOpenConns int `yaml:"maxOpenConns"`
}

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
	// CheckInPage is the page a partial check-in link opens, with challengeId
	// and code as query parameters; it exchanges them through authenticate?provider=otp.
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

// Load reads the file at path (none when empty), applies the environment and
// the defaults, and validates the result.
func Load(path string, getenv func(string) string) (*Config, error) {
	c := &Config{}
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if v := getenv("CUSTOMERD_ADDR"); v != "" {
		c.Addr = v
	}
	if v := getenv("CUSTOMERD_DATABASE_URL"); v != "" {
		c.Database.URL = v
	}
	if v := getenv("CUSTOMERD_PUBLIC_URL"); v != "" {
		c.PublicURL = v
	}
	if v := getenv("CUSTOMERD_SECRET"); v != "" {
		c.Secret = v
	}
	if v := getenv("CUSTOMERD_TRUSTED_PROXIES"); v != "" {
		c.TrustedProxies = strings.Split(v, ",")
	}
	c.fill()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// fill applies defaults to everything left empty.
func (c *Config) fill() {
	if c.Addr == "" {
		c.Addr = ":8080"
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
	if c.Database.MaxOpenConns == 0 {
		c.Database.MaxOpenConns = 16
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
	if c.Events.PollInterval == 0 {
		c.Events.PollInterval = time.Second
	}
	if c.Events.Lease == 0 {
		c.Events.Lease = time.Minute
	}
	if c.Events.Timeout == 0 {
		c.Events.Timeout = 10 * time.Second
	}
	if len(c.Tenants) == 0 {
		c.Tenants = map[string]*Tenant{"demo": {}}
	}
	for _, t := range c.Tenants {
		if t != nil {
			t.fill()
		}
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
		t.Senders = map[sender.Channel]sender.Config{sender.Email: {Type: "log"}, sender.SMS: {Type: "log"}}
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

// Validate returns the first bad setting, named by its path in the file.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr: %q is not host:port", c.Addr)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("publicURL: %q is not an http(s) URL", c.PublicURL)
	}
	if !strings.HasPrefix(c.Database.URL, "postgres://") && !strings.HasPrefix(c.Database.URL, "postgresql://") &&
		!strings.HasPrefix(c.Database.URL, "sqlite://") {
		return fmt.Errorf("database.url: want postgres://… or sqlite://PATH")
	}
	if c.Database.URL == "sqlite://" {
		return fmt.Errorf("database.url: sqlite:// needs a path")
	}
	if c.Database.MaxOpenConns < 1 {
		return fmt.Errorf("database.maxOpenConns: must be at least 1")
	}
	if c.Secret != "" && len(c.Secret) < 32 {
		return fmt.Errorf("secret: must be at least 32 characters")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return fmt.Errorf("log.format: %q is not one of json, text", c.Log.Format)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("shutdownTimeout: must not be negative")
	}
	if c.Events.PollInterval < time.Millisecond {
		return fmt.Errorf("events.pollInterval: must be at least 1ms")
	}
	if c.Events.Timeout <= 0 || c.Events.Lease <= c.Events.Timeout {
		return fmt.Errorf("events.lease: must be longer than events.timeout")
	}
	for i, p := range c.TrustedProxies {
		if _, err := proxyNet(p); err != nil {
			return fmt.Errorf("trustedProxies[%d]: %q is not a CIDR such as 10.0.0.0/8 or an IP address", i, p)
		}
	}
	for _, id := range c.TenantIDs() {
		if err := c.Tenants[id].validate(id); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tenant) validate(id string) error {
	at := "tenants." + id
	if !tenantIDPattern.MatchString(id) {
		return fmt.Errorf("%s: tenant ids are 1-64 lower-case letters, digits, '-' or '_'", at)
	}
	if t == nil {
		return fmt.Errorf("%s: empty tenant", at)
	}
	if !alpha2.MatchString(t.DefaultCountry) {
		return fmt.Errorf("%s.defaultCountry: %q is not an ISO 3166-1 alpha-2 code", at, t.DefaultCountry)
	}
	if !alpha2.MatchString(t.PhoneRegion) {
		return fmt.Errorf("%s.phoneRegion: %q is not an ISO 3166-1 alpha-2 code", at, t.PhoneRegion)
	}
	if !languageTag.MatchString(t.DefaultLanguage) {
		return fmt.Errorf("%s.defaultLanguage: %q is not a language tag", at, t.DefaultLanguage)
	}
	if t.Identifier != "email" && t.Identifier != "phoneNumber" {
		return fmt.Errorf("%s.identifier: %q is not one of email, phoneNumber", at, t.Identifier)
	}
	if t.TokenLifetime < time.Minute || t.TokenLifetime > 30*24*time.Hour {
		return fmt.Errorf("%s.tokenLifetime: must be between 1m and 720h", at)
	}
	for ch, s := range t.Senders {
		if ch != sender.Email && ch != sender.SMS {
			return fmt.Errorf("%s.senders.%s: unknown channel, have [email sms]", at, ch)
		}
		if err := s.Validate(); err != nil {
			return fmt.Errorf("%s.senders.%s.%w", at, ch, err)
		}
		if ch == sender.SMS && s.Type == "smtp" {
			return fmt.Errorf("%s.senders.sms.type: an smtp sender cannot send sms", at)
		}
		if ch == sender.Email && s.Type == "twilio" {
			return fmt.Errorf("%s.senders.email.type: a twilio sender cannot send email", at)
		}
		if ch == sender.Email && len(s.Countries) > 0 {
			return fmt.Errorf("%s.senders.email.countries: only sms senders have a country allow-list", at)
		}
	}
	for name, p := range t.Providers {
		if p.Type == "" {
			return fmt.Errorf("%s.providers.%s.type: required", at, name)
		}
	}
	o := t.OTP
	switch {
	case o.CodeLifetime < time.Minute || o.CodeLifetime > time.Hour:
		return fmt.Errorf("%s.otp.codeLifetime: must be between 1m and 1h", at)
	case o.MaxAttempts < 1 || o.MaxAttempts > 10:
		return fmt.Errorf("%s.otp.maxAttempts: must be between 1 and 10", at)
	case o.ResendInterval < 0:
		return fmt.Errorf("%s.otp.resendInterval: must not be negative", at)
	case o.MaxFailuresPerDay < 1:
		return fmt.Errorf("%s.otp.maxFailuresPerDay: must be at least 1", at)
	}
	switch t.CheckInPolicy {
	case flows.CheckInNone, flows.CheckInFull:
	case flows.CheckInPartial:
		if u, err := url.Parse(t.CheckInPage); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s.checkInPage: partial check-in needs the http(s) address of the page its links open", at)
		}
	default:
		return fmt.Errorf("%s.checkInPolicy: %q is not one of none, partial, full", at, t.CheckInPolicy)
	}
	if _, err := flows.Build(t.Flows, t.FlowDefaults()); err != nil {
		return fmt.Errorf("%s.flows.%w", at, err)
	}
	w := t.Webhooks
	if w.MaxAge < time.Second || w.RetryBase <= 0 || w.RetryMax < w.RetryBase {
		return fmt.Errorf("%s.webhooks: want maxAge of at least 1s and 0 < retryBase <= retryMax", at)
	}
	for i, e := range w.Endpoints {
		if err := egress.CheckURL(e.URL, e.AllowPrivateNetwork); err != nil {
			return fmt.Errorf("%s.webhooks.endpoints[%d].url: %w", at, i, err)
		}
		if len(e.Secret) < 16 {
			return fmt.Errorf("%s.webhooks.endpoints[%d].secret: must be at least 16 characters", at, i)
		}
		for _, typ := range e.Events {
			if !slices.Contains(flows.EventTypes, typ) {
				return fmt.Errorf("%s.webhooks.endpoints[%d].events: unknown event type %q, have [%s]", at, i, typ, strings.Join(flows.EventTypes, " "))
			}
		}
	}
	return nil
}

// TrustedNets are the TrustedProxies as address ranges (Validate checked them).
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

// TenantIDs lists the tenant ids in order.
func (c *Config) TenantIDs() []string {
	ids := make([]string, 0, len(c.Tenants))
	for id := range c.Tenants {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
