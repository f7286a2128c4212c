// Package oidc is the OpenID Connect ID-token provider: the google, apple,
// facebook and line presets and the generic oidc type for any issuer a tenant
// names. A token is verified with a key of the issuer's JWKS only, for the
// algorithm that key is for, and its claims against the tenant's client IDs.
// Facebook's classic access tokens are checked with the Graph API, and LINE's
// HS256 tokens with the channel secret, when the tenant configures them.
package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/customerd/customerd/egress"
	"github.com/customerd/customerd/providers"
	"github.com/customerd/customerd/token/jwtcheck"
)

// maxToken bounds an ID token.
const maxToken = 16 << 10

// The provider types of this package.
const (
	TypeGoogle   = "google"
	TypeApple    = "apple"
	TypeFacebook = "facebook"
	TypeLINE     = "line"
	TypeGeneric  = "oidc"
)

// Types lists the provider types this package opens.
func Types() []string {
	return []string{TypeApple, TypeFacebook, TypeGoogle, TypeLINE, TypeGeneric}
}

// preset is what a well-known issuer's type fills in.
type preset struct {
	issuers []string
	jwksURL string
}

var presets = map[string]preset{
	TypeGoogle: {issuers: []string{"https://accounts.google.com", "accounts.google.com"}, jwksURL: "https://www.googleapis.com/oauth2/v3/certs"},
	TypeApple:  {issuers: []string{"https://appleid.apple.com"}, jwksURL: "https://appleid.apple.com/auth/keys"},
	// Limited Login: the keys moved to limited.facebook.com; both issuers are in use.
	TypeFacebook: {issuers: []string{"https://www.facebook.com", "https://limited.facebook.com"}, jwksURL: "https://limited.facebook.com/.well-known/oauth/openid/jwks/"},
	TypeLINE:     {issuers: []string{"https://access.line.me"}, jwksURL: "https://api.line.me/oauth2/v2.1/certs"},
}

// DefaultGraphURL is the Graph API that checks Facebook access tokens.
const DefaultGraphURL = "https://graph.facebook.com/v21.0"

// Config is the settings of one OpenID Connect provider of a tenant.
type Config struct {
	// ClientIDs are the accepted audiences: one per platform (web, iOS, Android). Required.
	ClientIDs []string `json:"clientIds"`
	// Issuer is the iss the tokens must carry; the preset's by default, required for oidc.
	Issuer string `json:"issuer"`
	// JWKSURL is where the issuer's keys are; the preset's by default, discovered
	// from Issuer/.well-known/openid-configuration for oidc when empty.
	JWKSURL string `json:"jwksUrl"`
	// RequireNonce refuses tokens sent without a nonce.
	RequireNonce bool `json:"requireNonce"`
	// TrustEmail treats the token's email as verified when the token has no
	// email_verified (never when it says false): only for issuers that
	// release verified addresses only.
	TrustEmail bool `json:"trustEmail"`
	// ChannelSecret (line) also accepts HS256 tokens signed with it.
	ChannelSecret string `json:"channelSecret"`
	// AppSecret (facebook) also accepts classic access tokens, checked with
	// the Graph API as the app clientIds[0].
	AppSecret string `json:"appSecret"`
	// GraphURL (facebook) is the Graph API base URL.
	GraphURL string `json:"graphURL"`
	// AllowPrivateNetwork lets the issuer, the JWKS and the Graph API be on
	// private or loopback addresses (and plain http there): a local issuer.
	AllowPrivateNetwork bool `json:"allowPrivateNetwork"`
}

// Family opens the providers of this package; its JWKS cache is shared by
// every provider it opens, so by every tenant that trusts the same issuer.
type Family struct {
	keys *Keys
	now  func() time.Time
}

// New returns a Family reading the time from now (time.Now when nil);
// log receives the key cache's warnings.
func New(log *slog.Logger, now func() time.Time) *Family {
	if now == nil {
		now = time.Now
	}
	return &Family{keys: NewKeys(log, now), now: now}
}

// Register adds every type of the family to r.
func (f *Family) Register(r *providers.Registry) {
	for _, typ := range Types() {
		r.Register(typ, f.Factory(typ))
	}
}

// Factory opens providers of type typ.
func (f *Family) Factory(typ string) providers.Factory {
	return func(name string, settings map[string]any, deps providers.Deps) (providers.Provider, error) {
		var c Config
		if err := providers.DecodeSettings(settings, &c); err != nil {
			return nil, err
		}
		return f.open(typ, name, c, deps)
	}
}

func (f *Family) open(typ, name string, c Config, deps providers.Deps) (*provider, error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &provider{name: name, typ: typ, tenant: deps.Tenant, cfg: c, keys: f.keys, client: f.keys.clients.pick(c.AllowPrivateNetwork),
		now: f.now, log: log}
	if len(c.ClientIDs) == 0 {
		return nil, errors.New("clientIds: required, one per platform")
	}
	for i, id := range c.ClientIDs {
		if strings.TrimSpace(id) == "" {
			return nil, fmt.Errorf("clientIds[%d]: empty", i)
		}
	}
	pre, isPreset := presets[typ]
	switch {
	case c.Issuer != "":
		p.issuers = []string{c.Issuer}
	case isPreset:
		p.issuers = pre.issuers
	default:
		return nil, errors.New("issuer: required for type oidc")
	}
	p.jwksURL = c.JWKSURL
	if p.jwksURL == "" && isPreset {
		p.jwksURL = pre.jwksURL
	}
	if p.jwksURL != "" {
		if err := egress.CheckURL(p.jwksURL, c.AllowPrivateNetwork); err != nil {
			return nil, fmt.Errorf("jwksUrl: %w", err)
		}
	} else if err := egress.CheckURL(p.issuers[0], c.AllowPrivateNetwork); err != nil {
		return nil, fmt.Errorf("issuer: %w (it is where the keys are discovered)", err)
	}
	if c.ChannelSecret != "" && typ != TypeLINE {
		return nil, errors.New("channelSecret: only for type line")
	}
	if (c.AppSecret != "" || c.GraphURL != "") && typ != TypeFacebook {
		return nil, errors.New("appSecret: only for type facebook")
	}
	if c.GraphURL != "" && c.AppSecret == "" {
		return nil, errors.New("appSecret: required with graphURL")
	}
	p.graphURL = strings.TrimSuffix(c.GraphURL, "/")
	if p.graphURL == "" {
		p.graphURL = DefaultGraphURL
	}
	if err := egress.CheckURL(p.graphURL, c.AllowPrivateNetwork); err != nil {
		return nil, fmt.Errorf("graphURL: %w", err)
	}
	return p, nil
}

type provider struct {
	name, typ string
	tenant    string
	cfg       Config
	issuers   []string
	jwksURL   string // "" until discovered (oidc)
	graphURL  string
	keys      *Keys
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger

	discoverMu sync.Mutex
	// The last failed discovery and how many failed in a row: the next
	// waits (a second, doubling up to MinRefresh), answering its error.
	discoverErr   error
	discoverAt    time.Time
	discoverFails int
}

var _ providers.Verifier = (*provider)(nil)

type request struct {
	IDToken     *string `json:"idToken"`
	Nonce       *string `json:"nonce"`
	AccessToken *string `json:"accessToken"`
	User        *struct {
		Name *struct {
			FirstName string `json:"firstName"`
			LastName  string `json:"lastName"`
		} `json:"name"`
	} `json:"user"`
}

func (p *provider) Authenticate(ctx context.Context, body []byte) (providers.Identity, error) {
	var r request
	if err := json.Unmarshal(body, &r); err != nil {
		return providers.Identity{}, fmt.Errorf("%w: %s wants {\"idToken\", \"nonce\"?}: %s", providers.ErrBadRequest, p.name, typeError(err))
	}
	var (
		id  providers.Identity
		err error
	)
	switch {
	case r.IDToken != nil && r.AccessToken == nil:
		nonce := ""
		if r.Nonce != nil {
			nonce = *r.Nonce
		}
		id, err = p.verifyIDToken(ctx, *r.IDToken, nonce)
	case r.AccessToken != nil && r.IDToken == nil && p.typ == TypeFacebook && p.cfg.AppSecret != "":
		id, err = p.verifyAccessToken(ctx, *r.AccessToken)
	case r.AccessToken != nil && r.IDToken == nil:
		return providers.Identity{}, fmt.Errorf("%w: %s does not take access tokens, send {\"idToken\"}", providers.ErrBadRequest, p.name)
	default:
		return providers.Identity{}, fmt.Errorf("%w: %s wants {\"idToken\", \"nonce\"?}", providers.ErrBadRequest, p.name)
	}
	if errors.Is(err, providers.ErrRejected) {
		// Whoever sets up a provider needs to see why its tokens fail; the
		// reason names claims and headers, never the token.
		msg := "id token refused"
		if r.AccessToken != nil {
			msg = "access token refused"
		}
		p.log.InfoContext(ctx, msg, "tenant", p.tenant, "provider", p.name, "type", p.typ,
			"reason", bounded(strings.TrimPrefix(err.Error(), providers.ErrRejected.Error()+": ")))
	}
	if err != nil {
		return providers.Identity{}, err
	}
	// Apple sends the name only on the first sign-in, next to the token.
	if r.User != nil && r.User.Name != nil && p.typ == TypeApple {
		id.FirstName = clean(r.User.Name.FirstName, id.FirstName)
		id.LastName = clean(r.User.Name.LastName, id.LastName)
	}
	return id, nil
}

func typeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field + " has the wrong type"
	}
	return "the body is not a JSON object"
}

func clean(s, fallback string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 100 {
		return fallback
	}
	return s
}

// maxReason bounds a refusal's reason in the log: it may quote a token's
// header (kid, typ, alg), which is the caller's text, up to the token's size.
const maxReason = 300

// bounded is reason cut to maxReason bytes (on a character boundary), with
// an ellipsis when cut.
func bounded(reason string) string {
	if len(reason) <= maxReason {
		return reason
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut] + "…"
}

func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", providers.ErrRejected, fmt.Sprintf(format, args...))
}

// verifyIDToken checks raw as the tenant's ID token and returns who it proves.
func (p *provider) verifyIDToken(ctx context.Context, raw, nonce string) (providers.Identity, error) {
	h, err := jwtcheck.Precheck(raw, maxToken)
	if err != nil {
		return providers.Identity{}, refused(err)
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return providers.Identity{}, rejected("typ %q is not an ID token", h.Typ) // e.g. an at+jwt access token
	}
	alg, key, err := p.key(ctx, h)
	if err != nil {
		return providers.Identity{}, err
	}
	tok, err := jwtcheck.Parse(raw, h, alg, key, p.now,
		jwtcheck.OneOf(jwt.IssuerKey, p.issuers),
		jwt.WithValidator(jwt.ValidatorFunc(p.audience)),
		jwt.WithValidator(nonceIs(nonce, p.cfg.RequireNonce)))
	if err != nil {
		return providers.Identity{}, refused(err)
	}
	sub, _ := tok.Subject()
	if len(sub) > 255 {
		return providers.Identity{}, rejected("sub longer than 255 characters")
	}
	id := providers.Identity{Provider: p.name, Subject: sub, AMR: []string{"fed"},
		FirstName: clean(claim(tok, "given_name"), ""), LastName: clean(claim(tok, "family_name"), ""), Language: claim(tok, "locale")}
	if email := claim(tok, "email"); email != "" {
		var v any // Apple sends "true" as a string
		absent := tok.Get("email_verified", &v) != nil
		// trustEmail speaks for an issuer that says nothing, never against
		// one that says false: Google, Auth0 and Keycloak do for addresses
		// nobody confirmed.
		id.Email, id.EmailVerified = email, v == true || v == "true" || absent && p.cfg.TrustEmail
	}
	return id, nil
}

// claim is a string claim of tok, "" when absent or not a string.
func claim(tok jwt.Token, name string) string {
	var s string
	_ = tok.Get(name, &s)
	return s
}

func refused(err error) error { return fmt.Errorf("%w: %w", providers.ErrRejected, err) }

// key is what a token with header h verifies with: LINE's channel secret
// for HS256 when the tenant set one, otherwise the issuer's key for its kid,
// with the one algorithm that key is for.
func (p *provider) key(ctx context.Context, h jwtcheck.Header) (jwa.SignatureAlgorithm, any, error) {
	if h.Alg == jwa.HS256().String() {
		if p.cfg.ChannelSecret == "" {
			return jwa.SignatureAlgorithm{}, nil, rejected("HS256 is not accepted for this provider")
		}
		return jwa.HS256(), []byte(p.cfg.ChannelSecret), nil
	}
	jwksURL, err := p.jwks(ctx)
	if err != nil {
		return jwa.SignatureAlgorithm{}, nil, err
	}
	k, err := p.keys.find(ctx, source{url: jwksURL, allowPrivate: p.cfg.AllowPrivateNetwork}, h.Kid)
	switch {
	case errors.Is(err, errNoKeys):
		return jwa.SignatureAlgorithm{}, nil, fmt.Errorf("%w: %w", providers.ErrUnavailable, err)
	case err != nil:
		return jwa.SignatureAlgorithm{}, nil, rejected("kid %q: %v", h.Kid, err)
	}
	return k.alg, k.raw, nil
}

// audience checks that aud names one of the client IDs, and that azp, the
// party the token was issued to, does whenever present (OpenID Connect Core
// 3.1.3.7) and when aud names several. An issuer's other client may be given
// tokens whose aud is ours (Keycloak's audience mapper): its azp says whose
// they are, and whoever runs that client must not sign in as its users here.
func (p *provider) audience(_ context.Context, t jwt.Token) error {
	auds, _ := t.Audience()
	switch {
	case len(auds) == 0:
		return errors.New("no aud")
	case !slices.ContainsFunc(auds, p.knows):
		return errors.New("aud is none of the client IDs")
	case t.Has("azp") && !p.knows(claim(t, "azp")):
		return fmt.Errorf("azp %q is none of the client IDs", claim(t, "azp"))
	case len(auds) > 1 && !t.Has("azp"):
		return errors.New("several audiences and no azp")
	}
	return nil
}

// nonceIs checks the nonce claim against the one sent with the token; one
// must be sent when required.
func nonceIs(sent string, required bool) jwt.Validator {
	return jwt.ValidatorFunc(func(_ context.Context, t jwt.Token) error {
		switch {
		case sent != "" && (!t.Has("nonce") || !hmac.Equal([]byte(claim(t, "nonce")), []byte(sent))):
			return errors.New("nonce does not match")
		case sent == "" && required:
			return errors.New("nonce required")
		}
		return nil
	})
}

func (p *provider) knows(clientID string) bool {
	return clientID != "" && slices.Contains(p.cfg.ClientIDs, clientID)
}

// jwks is the JWKS URL: configured, preset, or discovered from the issuer.
func (p *provider) jwks(ctx context.Context) (string, error) {
	p.discoverMu.Lock()
	defer p.discoverMu.Unlock()
	if p.jwksURL != "" {
		return p.jwksURL, nil
	}
	// While the discovery fails, an ID token (anyone's, of any key) does not
	// make the issuer be called again at once: the last error stands.
	if p.discoverFails > 0 && p.now().Sub(p.discoverAt) < min(time.Second<<min(p.discoverFails-1, 10), MinRefresh) {
		return "", p.discoverErr
	}
	url, err := p.discover(context.WithoutCancel(ctx)) // the provider's, not the request's: a hang-up cancels nothing
	if err != nil {
		p.discoverErr, p.discoverAt = err, p.now()
		p.discoverFails++
		return "", err
	}
	p.jwksURL, p.discoverFails = url, 0
	return p.jwksURL, nil
}

// discover reads the JWKS URL from the issuer's discovery document.
func (p *provider) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(p.issuers[0], "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.getJSON(ctx, u, &doc); err != nil {
		return "", fmt.Errorf("%w: discovery: %w", providers.ErrUnavailable, err)
	}
	if doc.Issuer != p.issuers[0] {
		return "", fmt.Errorf("%w: discovery: issuer %q is not %q", providers.ErrUnavailable, doc.Issuer, p.issuers[0])
	}
	if err := sameHost(doc.JWKSURI, p.issuers[0], p.cfg.AllowPrivateNetwork); err != nil {
		return "", fmt.Errorf("%w: discovery: jwks_uri %w", providers.ErrUnavailable, err)
	}
	return doc.JWKSURI, nil
}

// sameHost checks a discovered JWKS URL: one the issuer's own host serves,
// under the egress rules, so that whoever can change the discovery document
// cannot send the key fetch elsewhere (jwksUrl names any other place).
func sameHost(jwks, issuer string, allowPrivate bool) error {
	if err := egress.CheckURL(jwks, allowPrivate); err != nil {
		return err
	}
	j, err := url.Parse(jwks)
	if err != nil {
		return err
	}
	i, err := url.Parse(issuer)
	if err != nil {
		return err
	}
	if hostPort(j) != hostPort(i) {
		return fmt.Errorf("%q is not on the issuer's host %s: set jwksUrl to trust it", egress.Where(j), i.Host)
	}
	return nil
}

// hostPort is u's host and port, the scheme's default port spelt out.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}

// statusError is an answer of an upstream that was not 200.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

func (p *provider) getJSON(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds tokens and the app secret: never in a log line
		}
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return &statusError{code: res.StatusCode}
	}
	return json.Unmarshal(raw, into)
}

// verifyAccessToken checks a classic Facebook access token with the Graph
// API: debug_token with the app token (it must be valid and for our app),
// then /me for the profile.
func (p *provider) verifyAccessToken(ctx context.Context, tok string) (providers.Identity, error) {
	if tok == "" || len(tok) > 4096 || strings.ContainsAny(tok, " \t\r\n&?#") {
		return providers.Identity{}, rejected("malformed access token")
	}
	appID := p.cfg.ClientIDs[0]
	var dbg struct {
		Data struct {
			AppID   string `json:"app_id"`
			IsValid bool   `json:"is_valid"`
			UserID  string `json:"user_id"`
		} `json:"data"`
	}
	q := url.Values{"input_token": {tok}, "access_token": {appID + "|" + p.cfg.AppSecret}}
	if err := p.graph(ctx, "/debug_token?"+q.Encode(), &dbg); err != nil {
		return providers.Identity{}, err
	}
	switch {
	case !dbg.Data.IsValid:
		return providers.Identity{}, rejected("access token is not valid")
	case !p.knows(dbg.Data.AppID):
		return providers.Identity{}, rejected("access token is for app %q", dbg.Data.AppID)
	case dbg.Data.UserID == "":
		return providers.Identity{}, rejected("access token names no user")
	}
	proof := hmac.New(sha256.New, []byte(p.cfg.AppSecret))
	proof.Write([]byte(tok))
	var me struct {
		ID        string `json:"id"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Email     string `json:"email"`
	}
	q = url.Values{"fields": {"id,first_name,last_name,email"}, "access_token": {tok},
		"appsecret_proof": {fmt.Sprintf("%x", proof.Sum(nil))}}
	if err := p.graph(ctx, "/me?"+q.Encode(), &me); err != nil {
		return providers.Identity{}, err
	}
	if me.ID != dbg.Data.UserID {
		return providers.Identity{}, rejected("/me is not the token's user")
	}
	return providers.Identity{Provider: p.name, Subject: me.ID, AMR: []string{"fed"},
		FirstName: clean(me.FirstName, ""), LastName: clean(me.LastName, ""), Email: me.Email, EmailVerified: p.cfg.TrustEmail}, nil
}

// graph calls the Graph API: a 4xx refuses the token, anything else that is
// not a JSON 200 makes the provider unavailable.
func (p *provider) graph(ctx context.Context, path string, into any) error {
	err := p.getJSON(ctx, p.graphURL+path, into)
	var se *statusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se) && se.code >= 400 && se.code < 500:
		return rejected("graph API: %v", err)
	default:
		return fmt.Errorf("%w: graph API: %w", providers.ErrUnavailable, err)
	}
}
