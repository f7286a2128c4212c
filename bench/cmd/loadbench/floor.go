package main

// The floor servers: the least a server built from customerd's libraries
// (Echo v4, jwx v3, GORM on the same database, opened the same way) must do
// for the same request. customerd's figures are read against theirs.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const (
	tenantID     = "demo"
	floorIssuer  = "http://floor.bench/api/" + tenantID
	floorProfile = `{"firstName":"Bench","lastName":"Customer","postcode":"75001","city":"Paris","region":"Île-de-France",` +
		`"country":"FR","language":"fr","isProspect":true,"consentsEmail":false,"consentsSms":false}`
)

// floorSecrets is what the parent hands a floor server: its signing key and
// the key of its code hashes.
type floorSecrets struct {
	PrivateJWK json.RawMessage `json:"privateJWK"`
	HMACKey    string          `json:"hmacKey"` // hex
}

type floorCustomer struct {
	ID            string `gorm:"primaryKey"`
	TenantID      string `gorm:"column:tenant_id"`
	Email         *string
	Phone         *string
	EmailVerified bool `gorm:"column:email_verified"`
	PhoneVerified bool `gorm:"column:phone_verified"`
	Profile       string
	Version       int64
	CreatedAt     time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt     time.Time `gorm:"autoUpdateTime:false"`
	DeletedAt     *time.Time
}

func (floorCustomer) TableName() string { return "floor_customers" }

type floorChallenge struct {
	ID          string `gorm:"primaryKey"`
	TenantID    string `gorm:"column:tenant_id"`
	Destination string
	CodeHash    string `gorm:"column:code_hash"`
	ExpiresAt   time.Time
}

func (floorChallenge) TableName() string { return "floor_challenges" }

// floorData is what the load generator sends the floors.
type floorData struct {
	secretsFile string
	tokens      []string   // GET floor: one token per seeded customer
	challenges  []prepared // authenticate floor: reusable (never consumed)
}

type prepared struct{ id, code, tenant string }

func floorSchema(pg bool) []string {
	ts := "datetime"
	if pg {
		ts = "timestamptz"
	}
	return []string{
		`CREATE TABLE floor_customers (
			id text PRIMARY KEY, tenant_id text NOT NULL, email text, phone text,
			email_verified boolean NOT NULL DEFAULT false, phone_verified boolean NOT NULL DEFAULT false,
			profile text NOT NULL DEFAULT '{}', version bigint NOT NULL DEFAULT 1,
			created_at ` + ts + ` NOT NULL, updated_at ` + ts + ` NOT NULL, deleted_at ` + ts + `,
			UNIQUE (tenant_id, email))`,
		`CREATE TABLE floor_challenges (
			id text PRIMARY KEY, tenant_id text NOT NULL, destination text NOT NULL,
			code_hash text NOT NULL, expires_at ` + ts + ` NOT NULL)`,
	}
}

// seedFloor creates the floor tables with customers customers and
// challenges challenges, a signing key, and the tokens and codes to send.
func seedFloor(ctx context.Context, dbURL, dir string, customers, challenges int) (*floorData, error) {
	db, err := openFloorDB(dbURL)
	if err != nil {
		return nil, err
	}
	defer db.close()
	w := db.w.WithContext(ctx)
	for _, stmt := range floorSchema(db.postgres) {
		if err := w.Exec(stmt).Error; err != nil {
			return nil, fmt.Errorf("floor schema: %w", err)
		}
	}
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		return nil, err
	}
	_ = priv.Set(jwk.KeyIDKey, "floor-"+uuid.NewString()[:8])
	_ = priv.Set(jwk.AlgorithmKey, jwa.ES256())
	privJSON, err := json.Marshal(priv)
	if err != nil {
		return nil, err
	}
	var hk [32]byte
	_, _ = rand.Read(hk[:])
	secrets := floorSecrets{PrivateJWK: privJSON, HMACKey: hex.EncodeToString(hk[:])}
	b, _ := json.Marshal(secrets)
	data := &floorData{secretsFile: dir + "/floor-secrets.json"}
	if err := os.WriteFile(data.secretsFile, b, 0o600); err != nil {
		return nil, err
	}

	now := time.Now().UTC().Truncate(time.Second)
	rows := make([]floorCustomer, customers)
	for i := range rows {
		email := fmt.Sprintf("floor.customer%d@example.com", i)
		rows[i] = floorCustomer{ID: uuid.NewString(), TenantID: tenantID, Email: &email, EmailVerified: true,
			Profile: floorProfile, Version: 1, CreatedAt: now, UpdatedAt: now}
		tok, err := signFloorToken(priv, rows[i].ID, now)
		if err != nil {
			return nil, err
		}
		data.tokens = append(data.tokens, tok)
	}
	if err := w.CreateInBatches(rows, 100).Error; err != nil {
		return nil, fmt.Errorf("seed floor customers: %w", err)
	}
	chs := make([]floorChallenge, challenges)
	for i := range chs {
		id := uuid.NewString()
		code := fmt.Sprintf("%06d", mustRandInt(1_000_000))
		chs[i] = floorChallenge{ID: id, TenantID: tenantID, Destination: fmt.Sprintf("floor.verify%d@example.com", i),
			CodeHash: codeHash(hk[:], tenantID, id, code), ExpiresAt: now.Add(time.Hour)}
		data.challenges = append(data.challenges, prepared{id: id, code: code, tenant: tenantID})
	}
	if err := w.CreateInBatches(chs, 100).Error; err != nil {
		return nil, fmt.Errorf("seed floor challenges: %w", err)
	}
	return data, nil
}

// codeHash is challenge.Service.hash.
func codeHash(key []byte, tenant, id, code string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tenant + "\x00" + id + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}

// signFloorToken signs a token shaped like customerd's.
func signFloorToken(key jwk.Key, sub string, now time.Time) (string, error) {
	tok, err := jwt.NewBuilder().
		Issuer(floorIssuer).
		Audience([]string{tenantID}).
		Subject(sub).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(24*time.Hour)).
		JwtID(uuid.NewString()).
		Claim("idp", "otp").
		Claim("amr", []string{"otp", "email"}).
		Build()
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, "JWT")
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key, jws.WithProtectedHeaders(hdr)))
	return string(signed), err
}

// serveFloor is the -role floor-get / floor-auth child: it listens on a
// loopback port, prints it, and serves until SIGTERM.
func serveFloor(kind, dbURL, secretsFile string) error {
	raw, err := os.ReadFile(secretsFile)
	if err != nil {
		return err
	}
	var sec floorSecrets
	if err := json.Unmarshal(raw, &sec); err != nil {
		return err
	}
	priv, err := jwk.ParseKey(sec.PrivateJWK)
	if err != nil {
		return err
	}
	pubKey, err := priv.PublicKey()
	if err != nil {
		return err
	}
	var pub ecdsa.PublicKey
	if err := jwk.Export(pubKey, &pub); err != nil {
		return err
	}
	hk, err := hex.DecodeString(sec.HMACKey)
	if err != nil {
		return err
	}
	db, err := openFloorDB(dbURL)
	if err != nil {
		return err
	}
	defer db.close()
	// Its statements are prepared once, as customerd prepares its hot ones.
	rPool, err := db.r.DB()
	if err != nil {
		return err
	}
	wPool, err := db.w.DB()
	if err != nil {
		return err
	}
	prep := func(pool *sql.DB, q string) *sql.Stmt {
		if err == nil {
			var st *sql.Stmt
			if st, err = pool.Prepare(q); err == nil {
				return st
			}
		}
		return nil
	}
	selectCustomer := prep(rPool, `SELECT id, email, email_verified, phone_verified, profile, created_at, updated_at
		FROM floor_customers WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`)
	selectChallenge := prep(rPool, `SELECT id, destination, code_hash, expires_at FROM floor_challenges WHERE tenant_id = $1 AND id = $2`)
	upsertCustomer := prep(wPool, `INSERT INTO floor_customers (id, tenant_id, email, email_verified, profile, version, created_at, updated_at)
		VALUES ($1, $2, $3, true, '{}', 1, $4, $4)
		ON CONFLICT (tenant_id, email) DO UPDATE SET email_verified = true, updated_at = excluded.updated_at,
		version = floor_customers.version + 1
		RETURNING id`)
	if err != nil {
		return fmt.Errorf("floor statements: %w", err)
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	switch kind {
	case "floor-get":
		e.GET("/api/:tenantId/customer", func(c echo.Context) error {
			tenant := c.Param("tenantId")
			tok, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			if !ok {
				return echo.NewHTTPError(http.StatusUnauthorized)
			}
			// What jwx alone does: the signature, then iss, aud and the times.
			t, err := jwt.Parse([]byte(tok), jwt.WithKey(jwa.ES256(), &pub), jwt.WithValidate(true),
				jwt.WithIssuer(floorIssuer), jwt.WithAudience(tenant),
				jwt.WithRequiredClaim(jwt.ExpirationKey), jwt.WithRequiredClaim(jwt.IssuedAtKey))
			if err != nil {
				return echo.NewHTTPError(http.StatusUnauthorized)
			}
			sub, _ := t.Subject()
			iat, _ := t.IssuedAt()
			exp, _ := t.Expiration()
			var idp string
			_ = t.Get("idp", &idp)
			if sub == "" {
				return echo.NewHTTPError(http.StatusUnauthorized)
			}
			var row floorCustomer
			err = selectCustomer.QueryRowContext(c.Request().Context(), tenant, sub).
				Scan(&row.ID, &row.Email, &row.EmailVerified, &row.PhoneVerified, &row.Profile, &row.CreatedAt, &row.UpdatedAt)
			if err != nil {
				return echo.NewHTTPError(http.StatusNotFound)
			}
			v := map[string]any{}
			if err := json.Unmarshal([]byte(row.Profile), &v); err != nil {
				return err
			}
			v["id"], v["email"], v["emailVerified"], v["phoneVerified"] = row.ID, row.Email, row.EmailVerified, row.PhoneVerified
			v["createdAt"], v["updatedAt"] = row.CreatedAt.UTC().Format(time.RFC3339), row.UpdatedAt.UTC().Format(time.RFC3339)
			v["provider"] = idp
			v["authenticatedAt"] = iat.UTC().Format(time.RFC3339)
			v["expiresAt"] = exp.UTC().Format(time.RFC3339)
			return c.JSON(http.StatusOK, v)
		})
	case "floor-auth":
		e.POST("/api/:tenantId/customer/authenticate", func(c echo.Context) error {
			ctx := c.Request().Context()
			tenant := c.Param("tenantId")
			var in struct {
				ChallengeID string `json:"challengeId"`
				Code        string `json:"code"`
			}
			if err := json.NewDecoder(c.Request().Body).Decode(&in); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest)
			}
			var ch floorChallenge
			if err := selectChallenge.QueryRowContext(ctx, tenant, in.ChallengeID).Scan(&ch.ID, &ch.Destination, &ch.CodeHash, &ch.ExpiresAt); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest)
			}
			now := time.Now().UTC()
			if !now.Before(ch.ExpiresAt) || !hmac.Equal([]byte(codeHash(hk, tenant, ch.ID, in.Code)), []byte(ch.CodeHash)) {
				return echo.NewHTTPError(http.StatusBadRequest)
			}
			var id string
			if err := upsertCustomer.QueryRowContext(ctx, uuid.NewString(), tenant, ch.Destination, now).Scan(&id); err != nil {
				return err
			}
			tok, err := signFloorToken(priv, id, now.Truncate(time.Second))
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, tok)
		})
	default:
		return fmt.Errorf("unknown floor %q", kind)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The same server settings as cmd/customerd.
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	return serveUntilSignal(srv, ln)
}

// serveUntilSignal serves until SIGTERM or SIGINT, then shuts down.
func serveUntilSignal(srv *http.Server, ln net.Listener) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
