package keys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	josev4 "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/storage"
)

// clock is a fake Config.Now that tests advance by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	publishDelay  = 10 * time.Minute
	tokenLifetime = time.Hour
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func sqliteStore(t testing.TB) storage.Store { return testdb.OpenStore(t, testdb.SQLite(t)) }

func newManager(t testing.TB, st Store, c *clock, mod ...func(*Config)) *Manager {
	t.Helper()
	cfg := Config{
		Secret:        testSecret,
		PublishDelay:  publishDelay,
		JWKSMaxAge:    5 * time.Minute,
		TokenLifetime: tokenLifetime,
		Now:           c.Now,
	}
	for _, f := range mod {
		f(&cfg)
	}
	m, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func initManager(t testing.TB, st Store, c *clock, mod ...func(*Config)) *Manager {
	t.Helper()
	m := newManager(t, st, c, mod...)
	if err := m.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// signerKID is the kid GetPrivateKey would sign with now.
func signerKID(t testing.TB, m *Manager) string {
	t.Helper()
	k, err := m.GetPrivateKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k.(*josev3.JSONWebKey).KeyID
}

func jwksKIDs(t testing.TB, m *Manager) []string {
	t.Helper()
	body, _ := m.JWKS()
	var doc struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	var out []string
	for _, k := range doc.Keys {
		out = append(out, k.KID)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func byAlg(t testing.TB, ks []storage.SigningKey, alg string) storage.SigningKey {
	t.Helper()
	for _, k := range ks {
		if k.Algorithm == alg {
			return k
		}
	}
	t.Fatalf("no %s key in %v", alg, ks)
	return storage.SigningKey{}
}

func TestNewValidates(t *testing.T) {
	st := sqliteStore(t)
	for _, tc := range []struct {
		name  string
		store Store
		cfg   Config
		want  string
	}{
		{"nil store", nil, Config{Secret: testSecret}, "nil store"},
		{"short secret", st, Config{Secret: []byte("short")}, "LATCHKEY_SECRET"},
		{"negative delay", st, Config{Secret: testSecret, PublishDelay: -1}, "PublishDelay"},
		{"negative max age", st, Config{Secret: testSecret, JWKSMaxAge: -1}, "JWKSMaxAge"},
		{"negative rotate", st, Config{Secret: testSecret, RotateEvery: -1}, "RotateEvery"},
		{"negative lifetime", st, Config{Secret: testSecret, TokenLifetime: -1}, "TokenLifetime"},
		{"negative refresh", st, Config{Secret: testSecret, RefreshEvery: -1}, "RefreshEvery"},
		{"ok", st, Config{Secret: testSecret}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.store, tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.MaxAge() != 5*time.Minute || m.cfg.PublishDelay != 5*time.Minute || m.cfg.RefreshEvery != 30*time.Second {
					t.Errorf("defaults: %+v", m.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New() error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestBeforeInit(t *testing.T) {
	m := newManager(t, sqliteStore(t), newClock())
	if _, err := m.GetPrivateKey(context.Background()); !errors.Is(err, ErrNoSigner) {
		t.Errorf("GetPrivateKey before Init: %v, want ErrNoSigner", err)
	}
	if body, etag := m.JWKS(); string(body) != `{"keys":[]}` || etag == "" {
		t.Errorf("JWKS before Init = %s %s", body, etag)
	}
}

func TestInit(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)

	rows, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("Init created %d keys, want 2", len(rows))
	}
	rs, es := byAlg(t, rows, RS256), byAlg(t, rows, ES256)
	for _, r := range rows {
		if !r.ActivatesAt.Equal(c.Now()) || r.RetiredAt != nil || r.ExpiresAt != nil {
			t.Errorf("first key %s: activates %v retired %v expires %v; want active now, no end", r.ID, r.ActivatesAt, r.RetiredAt, r.ExpiresAt)
		}
	}
	if got := signerKID(t, m); got != rs.ID {
		t.Errorf("RS256 signer = %s, want %s", got, rs.ID)
	}
	if k, err := m.SigningKey(ES256); err != nil || k.KeyID != es.ID {
		t.Errorf("ES256 signer = %v, %v; want %s", k, err, es.ID)
	}

	// The JWKS carries exactly the public members.
	body, etag := m.JWKS()
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("JWKS has %d keys: %s", len(doc.Keys), body)
	}
	want := map[string][]string{RS256: {"kid", "alg", "use", "kty", "n", "e"}, ES256: {"kid", "alg", "use", "kty", "crv", "x", "y"}}
	for _, k := range doc.Keys {
		alg, _ := k["alg"].(string)
		if k["use"] != "sig" || len(k) != len(want[alg]) {
			t.Errorf("JWKS key %v: want exactly %v", k, want[alg])
		}
		for _, f := range want[alg] {
			if _, ok := k[f]; !ok {
				t.Errorf("JWKS %s key lacks %q", alg, f)
			}
		}
	}
	if len(etag) != 24 || etag[0] != '"' || etag[23] != '"' {
		t.Errorf("ETag = %s, want a quoted 22-char tag", etag)
	}
	if set := m.PublicKeys(); len(set.Keys) != 2 || len(set.Key(rs.ID)) != 1 || !set.Key(rs.ID)[0].IsPublic() {
		t.Errorf("PublicKeys = %+v", set)
	}

	// A second process on the same database creates nothing and serves
	// the same bytes.
	c.Advance(time.Minute)
	m2 := initManager(t, st, c)
	rows2, _ := st.ListSigningKeys(ctx)
	if len(rows2) != 2 {
		t.Errorf("second Init: %d keys, want 2", len(rows2))
	}
	body2, etag2 := m2.JWKS()
	if !bytes.Equal(body, body2) || etag != etag2 {
		t.Errorf("second manager serves a different JWKS:\n%s %s\n%s %s", body, etag, body2, etag2)
	}

	// Refresh without changes keeps the very same snapshot (no rebuild).
	before := m.snap.Load()
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if m.snap.Load() != before {
		t.Error("Refresh rebuilt an unchanged key set")
	}
}

func TestSealed(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	rows, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{RS256, ES256} {
		k, err := m.SigningKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.Key)
		if err != nil {
			t.Fatal(err)
		}
		sealed := byAlg(t, rows, alg).PrivateKey
		if bytes.Contains(sealed, der) || bytes.Contains(sealed, der[len(der)-32:]) {
			t.Errorf("%s: stored private key contains the plain PKCS#8 DER", alg)
		}
		if len(sealed) != 12+len(der)+16 {
			t.Errorf("%s: sealed length %d, want nonce+DER+tag = %d", alg, len(sealed), 12+len(der)+16)
		}
	}

	other := newManager(t, st, c, func(cfg *Config) { cfg.Secret = []byte("another secret, 32 bytes long!!!") })
	for name, f := range map[string]func(context.Context) error{"Init": other.Init, "Refresh": other.Refresh} {
		err := f(ctx)
		if err == nil || !errors.Is(err, ErrSealed) || !strings.Contains(err.Error(), "LATCHKEY_SECRET") {
			t.Errorf("%s with another secret: %v; want ErrSealed mentioning LATCHKEY_SECRET", name, err)
		}
	}
	if rows2, _ := st.ListSigningKeys(ctx); len(rows2) != 2 {
		t.Errorf("a failed Init created keys: %d rows", len(rows2))
	}
}

func TestSealBindsKID(t *testing.T) {
	aead, err := newAEAD(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := seal(aead, rand.Reader, "kid-a", []byte("private"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(aead, "kid-a", blob); err != nil || string(got) != "private" {
		t.Fatalf("open = %q, %v", got, err)
	}
	for name, tc := range map[string]struct {
		kid  string
		blob []byte
	}{
		"other row": {"kid-b", blob},
		"truncated": {"kid-a", blob[:10]},
		"flipped":   {"kid-a", append(append([]byte{}, blob[:len(blob)-1]...), blob[len(blob)-1]^1)},
	} {
		if _, err := open(aead, tc.kid, tc.blob); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: open = %v, want ErrSealed", name, err)
		}
	}
}

// verify checks tok against the published keys with go-jose v4, as a
// relying party would, and returns the kid it was signed with.
func verify(t testing.TB, m *Manager, tok string) string {
	t.Helper()
	jws, err := josev4.ParseSigned(tok, []josev4.SignatureAlgorithm{josev4.RS256, josev4.ES256})
	if err != nil {
		t.Fatal(err)
	}
	kid := jws.Signatures[0].Header.KeyID
	set := m.PublicKeys()
	ks := set.Key(kid)
	if len(ks) != 1 {
		t.Fatalf("kid %q is not published", kid)
	}
	payload, err := jws.Verify(ks[0])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims["sub"] != "alice" {
		t.Fatalf("claims %s: %v", payload, err)
	}
	return kid
}

func sign(t testing.TB, m *Manager) string {
	t.Helper()
	signer := &jwt.DefaultSigner{GetPrivateKey: m.GetPrivateKey}
	tok, _, err := signer.Generate(context.Background(), jwt.MapClaims{"sub": "alice", "iss": "https://issuer.test"}, &jwt.Headers{})
	if err != nil {
		t.Fatalf("fosite Generate: %v", err)
	}
	return tok
}

func TestFositeSigning(t *testing.T) {
	m := initManager(t, sqliteStore(t), newClock())
	k, err := m.GetPrivateKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jwk, ok := k.(*josev3.JSONWebKey)
	if !ok {
		t.Fatalf("GetPrivateKey returned %T, want *josev3.JSONWebKey", k)
	}
	if _, ok := jwk.Key.(*rsa.PrivateKey); !ok || jwk.KeyID == "" || jwk.Algorithm != RS256 || jwk.Use != "sig" {
		t.Fatalf("GetPrivateKey = %+v", jwk)
	}
	tok := sign(t, m)
	if kid := verify(t, m, tok); kid != jwk.KeyID {
		t.Errorf("token kid = %s, want %s", kid, jwk.KeyID)
	}
	// fosite's own validation path accepts the key too.
	if _, err := (&jwt.DefaultSigner{GetPrivateKey: m.GetPrivateKey}).Validate(context.Background(), tok); err != nil {
		t.Errorf("fosite Validate: %v", err)
	}

	// The ES256 key signs with go-jose v4 and verifies against the JWKS.
	es, err := m.SigningKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := es.Key.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("ES256 key is %T", es.Key)
	}
	s, err := josev4.NewSigner(josev4.SigningKey{Algorithm: josev4.ES256, Key: es}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(`{"sub":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := obj.CompactSerialize()
	if kid := verify(t, m, compact); kid != es.KeyID {
		t.Errorf("ES256 token kid = %s, want %s", kid, es.KeyID)
	}
	if _, err := m.SigningKey("HS256"); err == nil {
		t.Error("SigningKey(HS256) did not fail")
	}
}

// TestNoDatabaseOnHotPath: the read methods keep working when the
// database is gone.
func TestNoDatabaseOnHotPath(t *testing.T) {
	st := sqliteStore(t)
	m := initManager(t, st, newClock())
	_ = st.Close()
	verify(t, m, sign(t, m))
	if body, _ := m.JWKS(); len(body) == 0 {
		t.Error("empty JWKS")
	}
	if err := m.Refresh(context.Background()); err == nil {
		t.Error("Refresh on a closed store did not fail")
	}
	verify(t, m, sign(t, m)) // a failed Refresh keeps the snapshot
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	oldKID := signerKID(t, m)
	_, oldETag := m.JWKS()

	created, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 || created[0].Algorithm != RS256 || created[1].Algorithm != ES256 {
		t.Fatalf("Rotate returned %+v", created)
	}
	newKID := created[0].ID
	if want := c.Now().Add(publishDelay); !created[0].ActivatesAt.Equal(want) {
		t.Errorf("new key activates %v, want %v", created[0].ActivatesAt, want)
	}
	// Published at once, not yet signing.
	kids := jwksKIDs(t, m)
	if len(kids) != 4 || !contains(kids, newKID) || !contains(kids, oldKID) {
		t.Errorf("JWKS after Rotate = %v", kids)
	}
	if _, etag := m.JWKS(); etag == oldETag {
		t.Error("ETag unchanged after Rotate")
	}
	if got := signerKID(t, m); got != oldKID {
		t.Errorf("signer right after Rotate = %s, want the old %s", got, oldKID)
	}
	old := byID(t, st, oldKID)
	if old.RetiredAt == nil || !old.RetiredAt.Equal(created[0].ActivatesAt) ||
		old.ExpiresAt == nil || !old.ExpiresAt.Equal(created[0].ActivatesAt.Add(tokenLifetime)) {
		t.Errorf("old key times: retired %v expires %v", old.RetiredAt, old.ExpiresAt)
	}

	c.Advance(publishDelay - time.Second)
	if got := signerKID(t, m); got != oldKID {
		t.Errorf("signer 1s before activation = %s, want the old %s", got, oldKID)
	}
	// Crossing ActivatesAt switches the signer with no Refresh.
	c.Advance(time.Second)
	if got := signerKID(t, m); got != newKID {
		t.Errorf("signer at activation = %s, want the new %s", got, newKID)
	}
	if kid := verify(t, m, sign(t, m)); kid != newKID {
		t.Errorf("token signed by %s, want %s", kid, newKID)
	}
	if kids := jwksKIDs(t, m); !contains(kids, oldKID) {
		t.Errorf("old key left JWKS while its tokens live: %v", kids)
	}

	// After RetiredAt+TokenLifetime (and a Refresh) the old key leaves.
	c.Advance(tokenLifetime - time.Second)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jwksKIDs(t, m); !contains(kids, oldKID) {
		t.Errorf("old key left JWKS 1s early: %v", kids)
	}
	c.Advance(time.Second)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jwksKIDs(t, m); contains(kids, oldKID) || len(kids) != 2 {
		t.Errorf("JWKS after expiry = %v, want only the 2 new keys", kids)
	}
	if rows, _ := st.ListSigningKeys(ctx); len(rows) != 4 {
		t.Errorf("%d rows before cleanup, want 4", len(rows))
	}
	// Maintenance deletes the expired rows.
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	rows, _ := st.ListSigningKeys(ctx)
	if len(rows) != 2 || byAlg(t, rows, RS256).ID != newKID {
		t.Errorf("after cleanup: %+v", rows)
	}
	if got := signerKID(t, m); got != newKID {
		t.Errorf("signer after cleanup = %s", got)
	}
}

func byID(t testing.TB, st Store, id string) storage.SigningKey {
	t.Helper()
	rows, err := st.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no key %s", id)
	return storage.SigningKey{}
}

func TestSecondManagerFollowsRotation(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m1 := initManager(t, st, c)
	m2 := initManager(t, st, c)
	created, err := m1.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b1, b2 := jwksKIDs(t, m1), jwksKIDs(t, m2); len(b1) != 4 || len(b2) != 2 {
		t.Fatalf("before Refresh: m1 %v, m2 %v", b1, b2)
	}
	if err := m2.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	b1, e1 := m1.JWKS()
	b2, e2 := m2.JWKS()
	if !bytes.Equal(b1, b2) || e1 != e2 {
		t.Errorf("JWKS differ after Refresh:\n%s\n%s", b1, b2)
	}
	c.Advance(publishDelay)
	if a, b := signerKID(t, m1), signerKID(t, m2); a != created[0].ID || b != a {
		t.Errorf("signers after activation: m1 %s, m2 %s, want %s", a, b, created[0].ID)
	}
}

func TestPostgres(t *testing.T) {
	ctx := context.Background()
	st := testdb.OpenStore(t, testdb.Postgres(t))
	c := newClock()
	m1 := initManager(t, st, c)
	m2 := initManager(t, st, c)
	b1, e1 := m1.JWKS()
	b2, e2 := m2.JWKS()
	if !bytes.Equal(b1, b2) || e1 != e2 {
		t.Fatalf("JWKS differ:\n%s\n%s", b1, b2)
	}
	created, err := m1.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	b1, e1 = m1.JWKS()
	b2, e2 = m2.JWKS()
	if !bytes.Equal(b1, b2) || e1 != e2 || len(jwksKIDs(t, m2)) != 4 {
		t.Fatalf("JWKS differ after rotation:\n%s\n%s", b1, b2)
	}
	c.Advance(publishDelay)
	if kid := verify(t, m2, sign(t, m2)); kid != created[0].ID {
		t.Errorf("m2 signed with %s, want %s", kid, created[0].ID)
	}
	c.Advance(tokenLifetime)
	if err := m2.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, _ := st.ListSigningKeys(ctx); len(rows) != 2 {
		t.Errorf("%d rows after cleanup, want 2", len(rows))
	}
}

func TestRotateNow(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	oldKID := signerKID(t, m)
	created, err := m.RotateNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := signerKID(t, m); got != created[0].ID {
		t.Errorf("signer after RotateNow = %s, want %s", got, created[0].ID)
	}
	old := byID(t, st, oldKID)
	if old.RetiredAt == nil || !old.RetiredAt.Equal(c.Now()) || !old.ExpiresAt.Equal(c.Now().Add(tokenLifetime)) {
		t.Errorf("old key: retired %v expires %v", old.RetiredAt, old.ExpiresAt)
	}
	if !contains(jwksKIDs(t, m), oldKID) {
		t.Error("old key left the JWKS at once")
	}
}

// TestRotateSupersedesPending: an emergency rotation while a scheduled
// "next" key waits must also stop that key, or it would take over later.
func TestRotateSupersedesPending(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	pending, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	emergency, err := m.RotateNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(publishDelay + time.Second)
	if got := signerKID(t, m); got != emergency[0].ID {
		t.Errorf("signer after the pending key's activation = %s, want the emergency %s (pending %s)", got, emergency[0].ID, pending[0].ID)
	}
}

func TestRetire(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	first := signerKID(t, m)

	if err := m.Retire(ctx, first); !errors.Is(err, ErrLastKey) {
		t.Errorf("retiring the only signer: %v, want ErrLastKey", err)
	}
	if err := m.Retire(ctx, "no-such-kid"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("retiring an unknown kid: %v, want storage.ErrNotFound", err)
	}

	// After a scheduled rotation neither the current key (nothing would
	// sign until the next one activates) nor the next one (nothing would
	// sign after the current one retires) may go.
	created, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := created[0].ID
	for _, kid := range []string{first, next} {
		if err := m.Retire(ctx, kid); !errors.Is(err, ErrLastKey) {
			t.Errorf("Retire(%s) during a pending rotation: %v, want ErrLastKey", kid, err)
		}
	}

	// An emergency rotation stops both the current and the pending key.
	c.Advance(publishDelay / 2)
	emergency, err := m.RotateNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Retire(ctx, first); err != nil {
		t.Errorf("retiring an already retired key: %v", err)
	}
	if err := m.Retire(ctx, emergency[0].ID); !errors.Is(err, ErrLastKey) {
		t.Errorf("retiring the sole signer after RotateNow: %v", err)
	}
	// Another RotateNow retires it; retiring it again is a no-op.
	c.Advance(time.Minute)
	if _, err := m.RotateNow(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Retire(ctx, emergency[0].ID); err != nil {
		t.Errorf("Retire of a key RotateNow retired: %v", err)
	}
	if got := byID(t, st, emergency[0].ID); !got.RetiredAt.Equal(c.Now()) {
		t.Errorf("emergency key retired at %v, want %v", got.RetiredAt, c.Now())
	}
}

// TestRetireFallsBack: retiring the current signer while an older key may
// still sign hands signing back to that key at once.
func TestRetireFallsBack(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	older := signerKID(t, m)
	// A second immediately active key whose predecessor is not retired
	// (what two concurrent first starts leave behind).
	c.Advance(time.Second)
	createOnEmptyView(t, newManager(t, st, c))
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	newer := signerKID(t, m)
	if newer == older {
		t.Fatal("the newer key does not sign")
	}
	if err := m.Retire(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if got := signerKID(t, m); got != older {
		t.Errorf("signer after retiring the newer key = %s, want %s", got, older)
	}
}

// createOnEmptyView makes m create first keys as if it had listed the
// database before another process inserted its own (a concurrent Init).
func createOnEmptyView(t testing.TB, m *Manager) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.ensureSignersLocked(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	first := signerKID(t, m)
	created, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := created[0].ID
	states := func() map[string]string {
		ks, err := m.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, k := range ks {
			out[k.ID] = k.State
		}
		return out
	}
	for _, step := range []struct {
		advance     time.Duration
		first, next string
	}{
		{0, StateActive, StateNext},
		{publishDelay, StateRetiring, StateActive},
		{tokenLifetime, StateExpired, StateActive},
	} {
		c.Advance(step.advance)
		s := states()
		if s[first] != step.first || s[next] != step.next {
			t.Errorf("after +%v: first %s next %s, want %s %s", step.advance, s[first], s[next], step.first, step.next)
		}
	}
	ks, _ := m.List(ctx)
	b, err := json.Marshal(ks[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"id"`, `"algorithm"`, `"state"`, `"created_at"`, `"activates_at"`, `"retired_at"`, `"expires_at"`} {
		if !bytes.Contains(b, []byte(f)) {
			t.Errorf("KeyInfo JSON %s lacks %s", b, f)
		}
	}
}

// TestMaintainConvergesConcurrentInit: two processes that both created
// first keys agree after Refresh, and maintenance retires and finally
// deletes the superseded ones.
func TestMaintainConvergesConcurrentInit(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m1 := initManager(t, st, c)
	c.Advance(time.Second)
	// m2 decides on an empty view, as if it had listed before m1 inserted.
	m2 := newManager(t, st, c)
	createOnEmptyView(t, m2)
	if err := m1.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	b1, _ := m1.JWKS()
	b2, _ := m2.JWKS()
	if !bytes.Equal(b1, b2) || len(jwksKIDs(t, m1)) != 4 {
		t.Fatalf("JWKS differ:\n%s\n%s", b1, b2)
	}
	if a, b := signerKID(t, m1), signerKID(t, m2); a != b {
		t.Fatalf("signers differ: %s %s", a, b)
	}
	winner := signerKID(t, m1)
	if err := m1.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	ks, _ := m1.List(ctx)
	retiring := 0
	for _, k := range ks {
		if k.State == StateRetiring {
			retiring++
			if !k.ExpiresAt.Equal(c.Now().Add(tokenLifetime)) {
				t.Errorf("superseded key expires %v, want now+TokenLifetime", k.ExpiresAt)
			}
		}
	}
	if retiring != 2 {
		t.Errorf("%d keys retiring after maintenance, want 2: %+v", retiring, ks)
	}
	if signerKID(t, m1) != winner {
		t.Error("maintenance changed the signer")
	}
	c.Advance(tokenLifetime)
	if err := m2.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, _ := st.ListSigningKeys(ctx); len(rows) != 2 {
		t.Errorf("%d rows after expiry, want 2", len(rows))
	}
}

func TestMaintainCreatesMissingSigner(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	// Every key lapses (the server was down for longer than a rotation).
	for _, r := range mustList(t, st) {
		ret, exp := c.Now(), c.Now().Add(time.Minute)
		r.RetiredAt, r.ExpiresAt = &ret, &exp
		if err := st.UpdateSigningKeyTimes(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if rows := mustList(t, st); len(rows) != 4 {
		t.Errorf("%d rows, want 2 retired + 2 new", len(rows))
	}
	verify(t, m, sign(t, m))
}

func mustList(t testing.TB, st Store) []storage.SigningKey {
	t.Helper()
	rows, err := st.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestRunScheduledRotation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c, func(cfg *Config) {
		cfg.RotateEvery = 720 * time.Hour
		cfg.RefreshEvery = 5 * time.Millisecond
	})
	first := signerKID(t, m)
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(30 * time.Millisecond)
	if n := len(mustList(t, st)); n != 2 {
		t.Fatalf("Run rotated early: %d keys", n)
	}
	c.Advance(721 * time.Hour)
	waitFor("scheduled rotation", func() bool { return len(jwksKIDs(t, m)) == 4 })
	time.Sleep(30 * time.Millisecond) // several more passes: still one rotation
	if n := len(mustList(t, st)); n != 4 {
		t.Errorf("%d keys after the scheduled rotation, want 4", n)
	}
	if got := signerKID(t, m); got != first {
		t.Errorf("rotated key signs before the publish delay: %s", got)
	}
	c.Advance(publishDelay + tokenLifetime)
	waitFor("expired keys deleted", func() bool { return len(mustList(t, st)) == 2 })
	if got := signerKID(t, m); got == first {
		t.Error("old key still signs")
	}
}

// TestConcurrentReads runs the read path against rotations (for -race).
func TestConcurrentReads(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	c := newClock()
	m := initManager(t, st, c)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := m.GetPrivateKey(ctx); err != nil {
					t.Error(err)
					return
				}
				m.JWKS()
				m.PublicKeys()
			}
		})
	}
	for range 3 {
		if _, err := m.RotateNow(ctx); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Minute)
	}
	close(stop)
	wg.Wait()
}

func TestHotPathAllocs(t *testing.T) {
	ctx := context.Background()
	m := initManager(t, sqliteStore(t), newClock(), func(cfg *Config) { cfg.Now = time.Now })
	if n := testing.AllocsPerRun(100, func() { _, _ = m.GetPrivateKey(ctx) }); n != 0 {
		t.Errorf("GetPrivateKey allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = m.JWKS() }); n != 0 {
		t.Errorf("JWKS allocates %v times per call", n)
	}
}

func BenchmarkGetPrivateKey(b *testing.B) {
	ctx := context.Background()
	m := initManager(b, sqliteStore(b), newClock(), func(cfg *Config) { cfg.Now = time.Now })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.GetPrivateKey(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkJWKS(b *testing.B) {
	m := initManager(b, sqliteStore(b), newClock())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if body, _ := m.JWKS(); len(body) == 0 {
				b.Fatal("empty")
			}
		}
	})
}
