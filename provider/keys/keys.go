// Package keys manages the provider's asymmetric signing keys: it creates
// them, seals their private halves in the database, publishes the JWKS,
// picks the key that signs, and rotates, retires and deletes keys.
//
// Every decision derives from the timestamps stored with each key (see
// storage.SigningKey), never from in-process state, so several server
// processes sharing one database agree on the JWKS and on the signer once
// each has refreshed:
//
//   - a key is published in the JWKS from CreatedAt until ExpiresAt;
//   - it may sign from ActivatesAt until RetiredAt;
//   - the signer for an algorithm is, among the keys that may sign now, the
//     one with the latest ActivatesAt (ties: latest CreatedAt, then ID).
//
// A scheduled rotation adds a "next" key that is published at once but
// signs only PublishDelay later, so relying parties that cache the JWKS for
// up to JWKSMaxAge already have it when the first token it signed arrives.
// The keys it supersedes stop signing at that instant and stay published
// for TokenLifetime more, until every token they signed has expired.
//
// Reads (GetPrivateKey, SigningKey, JWKS, PublicKeys) never touch the
// database: they read an immutable snapshot built by Refresh. Because a key
// activates or retires at a stored instant rather than when a process
// notices, the choice of signer is re-evaluated against the clock whenever
// the current time passes the next such instant, without waiting for a
// Refresh.
package keys

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	josev4 "github.com/go-jose/go-jose/v4"

	lksecret "github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// The algorithms the manager keeps a signer for.
const (
	RS256 = "RS256" // RSA-2048 keys; fosite signs ID tokens and JWT access tokens with it
	ES256 = "ES256" // P-256 ECDSA keys
)

// algorithms lists the managed algorithms; a key's index in it is its slot
// in signerState. A function (not a package variable) keeps it immutable.
func algorithms() [numAlgs]string { return [numAlgs]string{RS256, ES256} }

const numAlgs = 2

func algIndex(alg string) int {
	switch alg {
	case RS256:
		return 0
	case ES256:
		return 1
	}
	return -1
}

// Key states reported by List.
const (
	StateNext     = "next"     // published, signs from ActivatesAt
	StateActive   = "active"   // may sign now
	StateRetiring = "retiring" // no longer signs, still published
	StateExpired  = "expired"  // left the JWKS; deleted by the next maintenance pass
)

var (
	// ErrLastKey: retiring the key would leave an algorithm without a key
	// that can sign, now or later.
	ErrLastKey = errors.New("keys: no other key could sign for the algorithm")
	// ErrNoSigner: no key may sign for the algorithm now (Init was not
	// called, or the manager could not load any key).
	ErrNoSigner = errors.New("keys: no signing key")
)

// Store is the part of storage the manager needs (storage.SigningKeys);
// storage.Store (so *sqlstore.SQLStore) satisfies it.
type Store interface {
	CreateSigningKey(ctx context.Context, k *storage.SigningKey) error
	// ListSigningKeys returns every key, oldest first.
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	// UpdateSigningKeyTimes writes ActivatesAt, RetiredAt and ExpiresAt.
	UpdateSigningKeyTimes(ctx context.Context, k *storage.SigningKey) error
	// DeleteSigningKey removes a key; storage.ErrNotFound when missing.
	DeleteSigningKey(ctx context.Context, id string) error
}

// Config configures a Manager.
type Config struct {
	// Secret is LATCHKEY_SECRET (at least secret.MinMasterLen bytes). The sealing key is
	// HKDF-SHA256(Secret, no salt, "latchkey signing keys v1").
	Secret []byte
	// PreviousSecrets open keys sealed before a rotation of Secret
	// (LATCHKEY_PREVIOUS_SECRETS); new keys are sealed under Secret.
	PreviousSecrets [][]byte
	// PublishDelay is how long a rotated-in key is published before it
	// signs. 0 means JWKSMaxAge, the longest a relying party may have cached
	// the JWKS without it. Keep it above RefreshEvery: other processes
	// must have loaded a key before its activation to switch exactly then.
	// (After RotateNow or Retire they switch within RefreshEvery, signing
	// with the old key meanwhile.)
	PublishDelay time.Duration
	// JWKSMaxAge is the Cache-Control max-age of the JWKS (default 5m).
	JWKSMaxAge time.Duration
	// RotateEvery is the scheduled rotation period Run applies; 0 = never.
	RotateEvery time.Duration
	// TokenLifetime is the longest lifetime of anything signed (ID tokens,
	// JWT access tokens). A retired key stays published this long after it
	// stopped signing. 0 means 24h, so a zero Config never unpublishes a key
	// while tokens it signed may still be in use.
	TokenLifetime time.Duration
	// RefreshEvery is how often Run reloads keys from the database
	// (default 30s). Other processes notice a rotation within this period.
	RefreshEvery time.Duration
	Logger       *slog.Logger
	// Now is the clock (default time.Now); tests set a fake one.
	Now func() time.Time
	// Rand is the source of key ids and sealing nonces (default
	// crypto/rand.Reader). Since Go 1.26 key generation itself always uses
	// the system's secure source and ignores it.
	Rand io.Reader
}

// KeyInfo describes a key for the CLI; it never carries private material.
type KeyInfo struct {
	ID          string     `json:"id"`
	Algorithm   string     `json:"algorithm"`
	State       string     `json:"state"` // StateNext, StateActive, StateRetiring or StateExpired
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

// Manager owns the signing keys. Its read methods are safe for concurrent
// use and cheap; the methods that write serialise with each other.
type Manager struct {
	store Store
	cfg   Config
	aead  *lksecret.Sealer
	log   *slog.Logger

	mu   sync.Mutex // serialises loads and writes within this process
	snap atomic.Pointer[snapshot]
}

// The consumer (package provider) checks the full interface; this keeps the
// one fosite depends on honest even without it.
var _ interface {
	GetPrivateKey(context.Context) (interface{}, error)
} = (*Manager)(nil)

// New validates cfg, applies defaults and returns a Manager holding no keys
// yet: call Init before serving.
func New(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("keys: nil store")
	}
	if err := lksecret.CheckMaster(cfg.Secret); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"PublishDelay", cfg.PublishDelay},
		{"JWKSMaxAge", cfg.JWKSMaxAge},
		{"RotateEvery", cfg.RotateEvery},
		{"TokenLifetime", cfg.TokenLifetime},
		{"RefreshEvery", cfg.RefreshEvery},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("keys: %s is negative (%v)", d.name, d.v)
		}
	}
	if cfg.JWKSMaxAge == 0 {
		cfg.JWKSMaxAge = 5 * time.Minute
	}
	if cfg.PublishDelay == 0 {
		cfg.PublishDelay = cfg.JWKSMaxAge
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = 24 * time.Hour
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	aead, err := newAEAD(cfg.Secret, cfg.PreviousSecrets...)
	if err != nil {
		return nil, err
	}
	cfg.Secret, cfg.PreviousSecrets = nil, nil // only the derived keys are needed from here on
	m := &Manager{store: store, cfg: cfg, aead: aead, log: cfg.Logger}
	empty, err := m.build(nil, cfg.Now(), nil)
	if err != nil {
		return nil, err
	}
	m.snap.Store(empty)
	return m, nil
}

// ---- reading (hot path) ----

// GetPrivateKey returns the current RS256 signer as the *josev3.JSONWebKey
// fosite v0.49 expects (KeyID, Algorithm "RS256", Use "sig", Key
// *rsa.PrivateKey). It reads memory only. The returned key is shared and
// must not be modified.
func (m *Manager) GetPrivateKey(context.Context) (interface{}, error) {
	k, err := m.current(0)
	if err != nil {
		return nil, err
	}
	return k.v3, nil
}

// SigningKey returns the current private key for alg (RS256 or ES256). The
// returned key is shared and must not be modified.
func (m *Manager) SigningKey(alg string) (*josev4.JSONWebKey, error) {
	i := algIndex(alg)
	if i < 0 {
		return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	k, err := m.current(i)
	if err != nil {
		return nil, err
	}
	return k.private, nil
}

// JWKS returns the JWKS document and its strong ETag (quoted). Both are
// computed when the key set changes, not per call; the body is shared and
// must not be modified.
func (m *Manager) JWKS() (body []byte, etag string) {
	s := m.snap.Load()
	return s.jwks, s.etag
}

// MaxAge is the Cache-Control max-age for the JWKS.
func (m *Manager) MaxAge() time.Duration { return m.cfg.JWKSMaxAge }

// PublicKeys returns every published public key (the JWKS as a set). The
// set is shared and must not be modified.
func (m *Manager) PublicKeys() josev4.JSONWebKeySet {
	return m.snap.Load().public
}

// current returns the signer in slot i at the current time. The snapshot
// caches the choice together with the interval it holds for; only when the
// clock leaves that interval (a key activates or retires) is the choice
// recomputed, so the common case is an atomic load and two time
// comparisons, with no allocation.
func (m *Manager) current(i int) (*loadedKey, error) {
	s := m.snap.Load()
	now := m.cfg.Now()
	st := s.signers.Load()
	if st == nil || !st.covers(now) {
		// Racing goroutines compute the same answer; any one may win.
		st = s.evaluate(now)
		s.signers.Store(st)
	}
	if k := st.byAlg[i]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w for %s (keys not initialised, or every key retired)", ErrNoSigner, algorithms()[i])
}

// ActiveKeyAge is how long the oldest of the keys signing now has been
// active (for the rotation-overdue alert): 0 when none signs. It reads the
// in-memory key set, no statement.
func (m *Manager) ActiveKeyAge() time.Duration {
	var oldest time.Duration
	for i := range algorithms() {
		k, err := m.current(i)
		if err != nil {
			continue
		}
		oldest = max(oldest, m.cfg.Now().Sub(k.row.ActivatesAt))
	}
	return oldest
}

// ---- snapshot ----

// loadedKey is one stored key, parsed. Immutable once in a snapshot.
type loadedKey struct {
	row       storage.SigningKey
	public    josev4.JSONWebKey
	private   *josev4.JSONWebKey // nil when the key can no longer sign (or the algorithm is unknown)
	v3        *josev3.JSONWebKey // private in fosite's go-jose v3 form
	published bool
}

// snapshot is everything the read path needs, built once per key-set
// change and replaced atomically.
type snapshot struct {
	fingerprint [sha256.Size]byte
	keys        []*loadedKey // CreatedAt, then ID order
	jwks        []byte
	etag        string
	public      josev4.JSONWebKeySet
	// signers caches the signer choice for an interval of time; see current.
	signers atomic.Pointer[signerState]
}

// signerState is the signer per algorithm for from <= now < until (a zero
// until: from then on, as far as the stored keys say).
type signerState struct {
	from, until time.Time
	byAlg       [numAlgs]*loadedKey
}

func (st *signerState) covers(now time.Time) bool {
	return !now.Before(st.from) && (st.until.IsZero() || now.Before(st.until))
}

// evaluate picks the signers at now and the interval around now in which
// no key activates or retires, i.e. in which the choice cannot change.
func (s *snapshot) evaluate(now time.Time) *signerState {
	st := &signerState{}
	bound := func(t time.Time) {
		if !t.After(now) {
			if t.After(st.from) {
				st.from = t
			}
		} else if st.until.IsZero() || t.Before(st.until) {
			st.until = t
		}
	}
	for _, k := range s.keys {
		i := algIndex(k.row.Algorithm)
		if i < 0 || k.private == nil {
			continue
		}
		bound(k.row.ActivatesAt)
		if k.row.RetiredAt != nil {
			bound(*k.row.RetiredAt)
		}
		if maySign(&k.row, now) && (st.byAlg[i] == nil || precedes(&k.row, &st.byAlg[i].row)) {
			st.byAlg[i] = k
		}
	}
	return st
}

// maySign reports whether k is within its signing window at t.
func maySign(k *storage.SigningKey, t time.Time) bool {
	return !k.ActivatesAt.After(t) && (k.RetiredAt == nil || k.RetiredAt.After(t))
}

// published reports whether k belongs in the JWKS at t.
func published(k *storage.SigningKey, t time.Time) bool {
	return k.ExpiresAt == nil || k.ExpiresAt.After(t)
}

// precedes reports whether a wins over b as signer: latest ActivatesAt,
// then latest CreatedAt, then greatest ID, a total order every process
// applies the same way.
func precedes(a, b *storage.SigningKey) bool {
	if c := a.ActivatesAt.Compare(b.ActivatesAt); c != 0 {
		return c > 0
	}
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

// fingerprint hashes everything a snapshot depends on: the rows and which
// of them are published at now. Equal fingerprints mean the snapshot in
// memory is still right and need not be rebuilt.
func fingerprint(rows []storage.SigningKey, now time.Time) [sha256.Size]byte {
	h := sha256.New()
	for i := range rows {
		r := &rows[i]
		writeField(h, []byte(r.ID))
		writeField(h, []byte(r.Algorithm))
		writeField(h, r.PublicJWK)
		writeField(h, r.PrivateKey)
		writeTime(h, &r.CreatedAt)
		writeTime(h, &r.ActivatesAt)
		writeTime(h, r.RetiredAt)
		writeTime(h, r.ExpiresAt)
		if published(r, now) {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// writeField writes b length-prefixed so field boundaries are unambiguous.
func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

func writeTime(h hash.Hash, t *time.Time) {
	var b [9]byte
	if t != nil {
		b[0] = 1
		binary.BigEndian.PutUint64(b[1:], uint64(t.UnixNano()))
	}
	h.Write(b[:])
}

// build parses rows into a snapshot, reusing keys already parsed in prev
// (so a private key is unsealed and parsed once per process, not once per
// refresh). It fails on any row it cannot use, leaving the caller's current
// snapshot in place.
func (m *Manager) build(rows []storage.SigningKey, now time.Time, prev *snapshot) (*snapshot, error) {
	rows = sortedCopy(rows)
	old := map[string]*loadedKey{}
	if prev != nil {
		for _, k := range prev.keys {
			old[k.row.ID] = k
		}
	}
	s := &snapshot{fingerprint: fingerprint(rows, now), public: josev4.JSONWebKeySet{Keys: []josev4.JSONWebKey{}}}
	for i := range rows {
		k, err := m.load(&rows[i], now, old[rows[i].ID])
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
		if k.published {
			s.public.Keys = append(s.public.Keys, k.public)
		}
	}
	// The JWKS is marshalled from the parsed keys in a fixed order, so every
	// process serving the same rows serves the same bytes and ETag.
	body, err := json.Marshal(s.public)
	if err != nil {
		return nil, fmt.Errorf("keys: marshal JWKS: %w", err)
	}
	sum := sha256.Sum256(body)
	s.jwks = body
	s.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:])[:22] + `"`
	return s, nil
}

// load parses one row. The private key is opened only while the key can
// still sign (RetiredAt in the future or unset): retired keys are only
// published, and skipping them keeps an old unreadable row from blocking
// the server.
func (m *Manager) load(r *storage.SigningKey, now time.Time, prev *loadedKey) (*loadedKey, error) {
	k := &loadedKey{row: *r, published: published(r, now)}
	same := prev != nil && prev.row.Algorithm == r.Algorithm &&
		bytes.Equal(prev.row.PublicJWK, r.PublicJWK) && bytes.Equal(prev.row.PrivateKey, r.PrivateKey)
	if same {
		k.public = prev.public
		k.private, k.v3 = prev.private, prev.v3
	} else {
		pub, err := parsePublic(r)
		if err != nil {
			return nil, err
		}
		k.public = pub
	}
	canSign := r.RetiredAt == nil || r.RetiredAt.After(now)
	if k.private == nil && canSign && algIndex(r.Algorithm) >= 0 {
		priv, err := m.parsePrivate(r, &k.public)
		if err != nil {
			return nil, err
		}
		k.private, k.v3 = priv, toV3(priv)
	}
	return k, nil
}

func parsePublic(r *storage.SigningKey) (josev4.JSONWebKey, error) {
	var pub josev4.JSONWebKey
	if err := pub.UnmarshalJSON(r.PublicJWK); err != nil {
		return pub, fmt.Errorf("keys: key %s: public JWK: %w", r.ID, err)
	}
	switch {
	case !pub.IsPublic() || !pub.Valid():
		return pub, fmt.Errorf("keys: key %s: public JWK is not a valid public key", r.ID)
	case pub.KeyID != r.ID:
		return pub, fmt.Errorf("keys: key %s: public JWK has kid %q", r.ID, pub.KeyID)
	case pub.Algorithm != r.Algorithm:
		return pub, fmt.Errorf("keys: key %s: public JWK has alg %q, row has %q", r.ID, pub.Algorithm, r.Algorithm)
	}
	return pub, nil
}

func (m *Manager) parsePrivate(r *storage.SigningKey, pub *josev4.JSONWebKey) (*josev4.JSONWebKey, error) {
	der, err := open(m.aead, r.ID, r.PrivateKey)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: private key: %w", r.ID, err)
	}
	var ok bool
	switch r.Algorithm {
	case RS256:
		_, ok = parsed.(*rsa.PrivateKey)
	case ES256:
		var ec *ecdsa.PrivateKey
		ec, ok = parsed.(*ecdsa.PrivateKey)
		ok = ok && ec.Curve == elliptic.P256()
	}
	if !ok {
		return nil, fmt.Errorf("keys: key %s: private key %T does not fit %s", r.ID, parsed, r.Algorithm)
	}
	// A public JWK that does not belong to the private key would publish a
	// key nobody can verify with; refuse it loudly.
	signer := parsed.(crypto.Signer)
	eq, ok := pub.Key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(signer.Public()) {
		return nil, fmt.Errorf("keys: key %s: private key does not match the public JWK", r.ID)
	}
	return &josev4.JSONWebKey{Key: parsed, KeyID: r.ID, Algorithm: r.Algorithm, Use: "sig"}, nil
}

// toV3 is the one adapter from our go-jose v4 keys to the v3 form fosite
// v0.49 type-switches on (it rejects a v4 key at run time with
// "unsupported private key type"). Only what fosite reads is carried: the
// crypto key (shared, not copied), kid (which becomes the JWT "kid"
// header), alg and use. It runs once per key load, never per request.
func toV3(k *josev4.JSONWebKey) *josev3.JSONWebKey {
	return &josev3.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Algorithm: k.Algorithm, Use: k.Use}
}

// ---- loading ----

// Init loads the keys and, for each algorithm without a key that may sign
// now, creates one that signs at once (a first start, or a database whose
// keys all lapsed). Call it before serving.
//
// Two processes starting together on an empty database may both create
// keys. That is harmless: after a Refresh both pick the same signer (the
// latest activated), both publish both keys, and maintenance retires the
// superseded one.
func (m *Manager) Init(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.refreshLocked(ctx); err != nil {
		return err
	}
	_, err := m.ensureSignersLocked(ctx)
	return err
}

// Refresh reloads the keys from the database. The snapshot (JWKS bytes,
// ETag, parsed keys) is rebuilt only when the rows or the set of published
// keys changed.
func (m *Manager) Refresh(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.refreshLocked(ctx)
	return err
}

func (m *Manager) refreshLocked(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: load: %w", err)
	}
	now := m.cfg.Now()
	cur := m.snap.Load()
	if fingerprint(sortedCopy(rows), now) == cur.fingerprint {
		return rows, nil
	}
	s, err := m.build(rows, now, cur)
	if err != nil {
		return nil, err
	}
	m.snap.Store(s)
	return rows, nil
}

// sortedCopy orders rows the way build does, so fingerprints compare.
func sortedCopy(rows []storage.SigningKey) []storage.SigningKey {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b storage.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return rows
}

// ensureSignersLocked creates an immediately active key for every
// algorithm that has no signer now, then reloads. It reports whether it
// created any.
func (m *Manager) ensureSignersLocked(ctx context.Context) (bool, error) {
	now := norm(m.cfg.Now())
	st := m.snap.Load().evaluate(now)
	created := false
	for i, alg := range algorithms() {
		if st.byAlg[i] != nil {
			continue
		}
		k, err := m.newKey(alg, now, now)
		if err != nil {
			return created, err
		}
		if err := m.store.CreateSigningKey(ctx, k); err != nil {
			return created, fmt.Errorf("keys: create %s key: %w", alg, err)
		}
		created = true
		m.log.Info("signing key created", "kid", k.ID, "alg", alg, "reason", "no key could sign")
	}
	if created {
		if _, err := m.refreshLocked(ctx); err != nil {
			return created, err
		}
	}
	return created, nil
}

// ---- writing ----

// Rotate adds a new key per algorithm that is published now and signs from
// now+PublishDelay, and schedules the keys it supersedes to stop signing at
// that instant (RetiredAt) and leave the JWKS TokenLifetime later
// (ExpiresAt). It returns the new keys.
func (m *Manager) Rotate(ctx context.Context) ([]storage.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rotateLocked(ctx, false)
}

// RotateNow is the emergency rotation (a key leaked): like Rotate, but the
// new keys sign at once and the old ones stop at once. Relying parties
// holding a cached JWKS without the new keys reject tokens signed with
// them until their cache expires (up to JWKSMaxAge) or they refetch on the
// unknown kid; other server processes switch within RefreshEvery.
func (m *Manager) RotateNow(ctx context.Context) ([]storage.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rotateLocked(ctx, true)
}

func (m *Manager) rotateLocked(ctx context.Context, immediate bool) ([]storage.SigningKey, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: rotate: %w", err)
	}
	now := norm(m.cfg.Now())
	activates := now
	if !immediate {
		activates = now.Add(m.cfg.PublishDelay)
	}
	var created []storage.SigningKey
	for _, alg := range algorithms() {
		k, err := m.newKey(alg, now, activates)
		if err != nil {
			return created, err
		}
		// The new key goes in before the old ones are retired: a crash in
		// between leaves an extra published key (maintenance retires it),
		// never an algorithm without a signer.
		if err := m.store.CreateSigningKey(ctx, k); err != nil {
			return created, fmt.Errorf("keys: rotate: create %s key: %w", alg, err)
		}
		created = append(created, *k)
		for i := range rows {
			r := &rows[i]
			// Every other key of the algorithm that would still sign after
			// the new one activates, pending "next" keys included: the
			// latest rotation wins.
			if r.Algorithm != alg || (r.RetiredAt != nil && !r.RetiredAt.After(activates)) {
				continue
			}
			if err := m.retireRow(ctx, r, activates, activates); err != nil {
				return created, fmt.Errorf("keys: rotate: %w", err)
			}
		}
		m.log.Info("signing key rotated in", "kid", k.ID, "alg", alg, "activates_at", activates, "immediate", immediate)
	}
	if _, err := m.refreshLocked(ctx); err != nil {
		return created, err
	}
	return created, nil
}

// retireRow sets r to stop signing at retiredAt and to leave the JWKS
// TokenLifetime after the later of retiredAt and lastSigned.
func (m *Manager) retireRow(ctx context.Context, r *storage.SigningKey, retiredAt, lastSigned time.Time) error {
	ret := norm(retiredAt)
	exp := norm(later(retiredAt, lastSigned).Add(m.cfg.TokenLifetime))
	r.RetiredAt, r.ExpiresAt = &ret, &exp
	if err := m.store.UpdateSigningKeyTimes(ctx, r); err != nil {
		return fmt.Errorf("retire key %s: %w", r.ID, err)
	}
	return nil
}

// Retire stops kid signing now; it stays published for TokenLifetime. It
// refuses (ErrLastKey) when no other key of the algorithm could sign from
// now on (rotate first, e.g. with RotateNow), and wraps storage.ErrNotFound
// for an unknown kid. Retiring an already retired key does nothing.
func (m *Manager) Retire(ctx context.Context, kid string) error {
	_, err := m.retire(ctx, kid)
	return err
}

// retire is Retire; it also returns the key as it was before, its state
// judged at the instant the retirement is.
func (m *Manager) retire(ctx context.Context, kid string) (KeyInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keys: retire %s: %w", kid, err)
	}
	now := norm(m.cfg.Now())
	idx := slices.IndexFunc(rows, func(r storage.SigningKey) bool { return r.ID == kid })
	if idx < 0 {
		return KeyInfo{}, fmt.Errorf("keys: retire %s: %w", kid, storage.ErrNotFound)
	}
	r := &rows[idx]
	before := info(r, now)
	if r.RetiredAt != nil && !r.RetiredAt.After(now) {
		return before, nil
	}
	// Judge the key set as it would be after retiring, over all future
	// time: retiring a pending key can leave a gap just as retiring the
	// current signer can.
	ret := now
	r.RetiredAt = &ret
	if !covered(rows, r.Algorithm, now) {
		return before, fmt.Errorf("keys: retire %s: %w (%s); rotate first", kid, ErrLastKey, r.Algorithm)
	}
	if err := m.retireRow(ctx, r, now, now); err != nil {
		return before, fmt.Errorf("keys: %w", err)
	}
	m.log.Info("signing key retired", "kid", kid, "alg", r.Algorithm)
	_, err = m.refreshLocked(ctx)
	return before, err
}

// covered reports whether, from now on, some key of alg may sign at every
// instant.
func covered(rows []storage.SigningKey, alg string, now time.Time) bool {
	t := now
	for progress := true; progress; {
		progress = false
		for i := range rows {
			r := &rows[i]
			if r.Algorithm != alg || !maySign(r, t) {
				continue
			}
			if r.RetiredAt == nil {
				return true
			}
			t, progress = *r.RetiredAt, true
		}
	}
	return false
}

// List returns every stored key and its state, read from the database (not
// the snapshot), oldest first.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	now := m.cfg.Now()
	out := make([]KeyInfo, 0, len(rows))
	for i := range rows {
		out = append(out, info(&rows[i], now))
	}
	return out, nil
}

// info describes r as it is at now.
func info(r *storage.SigningKey, now time.Time) KeyInfo {
	return KeyInfo{
		ID: r.ID, Algorithm: r.Algorithm, State: state(r, now),
		CreatedAt: r.CreatedAt, ActivatesAt: r.ActivatesAt, RetiredAt: r.RetiredAt, ExpiresAt: r.ExpiresAt,
	}
}

func state(r *storage.SigningKey, now time.Time) string {
	switch {
	case !published(r, now):
		return StateExpired
	case r.RetiredAt != nil && (!r.RetiredAt.After(now) || !r.RetiredAt.After(r.ActivatesAt)):
		// Retired, or superseded before it ever signed.
		return StateRetiring
	case r.ActivatesAt.After(now):
		return StateNext
	}
	return StateActive
}

// ---- background ----

// Run maintains the keys until ctx is done: every RefreshEvery it runs
// Maintain. Errors are logged; Run never gives up, since a database outage
// must not take signing down (the snapshot keeps serving).
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.Maintain(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("signing keys: maintenance failed", "err", err)
		}
	}
}

// Maintain is one pass of Run: reload; delete keys whose ExpiresAt passed;
// retire keys that a later-activating, unretired key of the same algorithm
// makes unreachable (left by concurrent Inits or rotations, or a rotation
// interrupted halfway); create a signer for an algorithm without one; and,
// when RotateEvery > 0 and the newest unretired key of an algorithm is
// older than that, Rotate. Every step derives from the stored rows, so
// processes running it concurrently make the same (idempotent) changes;
// concurrent scheduled rotations may add a spare key, which the next pass
// retires.
func (m *Manager) Maintain(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, err := m.refreshLocked(ctx)
	if err != nil {
		return err
	}
	now := norm(m.cfg.Now())
	var errs []error
	changed := false

	live := rows[:0:0]
	for i := range rows {
		r := &rows[i]
		if published(r, now) {
			live = append(live, *r)
			continue
		}
		err := m.store.DeleteSigningKey(ctx, r.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("keys: delete expired key %s: %w", r.ID, err))
			continue
		}
		changed = true
		m.log.Info("signing key deleted", "kid", r.ID, "alg", r.Algorithm, "expired_at", *r.ExpiresAt)
	}

	// Decide every retirement on the rows as loaded, then write, so the
	// outcome does not depend on the order rows are visited in.
	type retirement struct {
		key *storage.SigningKey
		at  time.Time
		by  string
	}
	var retire []retirement
	for i := range live {
		k := &live[i]
		if k.RetiredAt != nil {
			continue
		}
		// k can no longer be the signer once any unretired key that wins
		// over it activates; the earliest such activation is when k stops.
		var successor *storage.SigningKey
		for j := range live {
			o := &live[j]
			if j != i && o.Algorithm == k.Algorithm && o.RetiredAt == nil && precedes(o, k) &&
				(successor == nil || o.ActivatesAt.Before(successor.ActivatesAt)) {
				successor = o
			}
		}
		if successor != nil {
			retire = append(retire, retirement{k, successor.ActivatesAt, successor.ID})
		}
	}
	for _, rt := range retire {
		// k may have signed until now (a process notices the successor
		// only on refresh), hence expiry counted from now at the earliest.
		if err := m.retireRow(ctx, rt.key, rt.at, now); err != nil {
			errs = append(errs, fmt.Errorf("keys: %w", err))
			continue
		}
		changed = true
		m.log.Info("signing key retired", "kid", rt.key.ID, "alg", rt.key.Algorithm, "superseded_by", rt.by)
	}

	if changed {
		if _, err := m.refreshLocked(ctx); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	if _, err := m.ensureSignersLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	if m.cfg.RotateEvery > 0 && m.rotationDue(now) {
		if _, err := m.rotateLocked(ctx, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rotationDue reports whether some algorithm's newest unretired key was
// created RotateEvery ago or more.
func (m *Manager) rotationDue(now time.Time) bool {
	var newest [numAlgs]time.Time
	var seen [numAlgs]bool
	for _, k := range m.snap.Load().keys {
		i := algIndex(k.row.Algorithm)
		if i < 0 || k.row.RetiredAt != nil {
			continue
		}
		seen[i] = true
		newest[i] = later(newest[i], k.row.CreatedAt)
	}
	for i := range newest {
		if seen[i] && !now.Before(newest[i].Add(m.cfg.RotateEvery)) {
			return true
		}
	}
	return false
}

// ---- helpers ----

// newKey generates a key pair for alg and returns the row to store: the
// public JWK as JSON, the private key sealed as PKCS#8.
func (m *Manager) newKey(alg string, created, activates time.Time) (*storage.SigningKey, error) {
	var id [16]byte
	if _, err := io.ReadFull(m.cfg.Rand, id[:]); err != nil {
		return nil, fmt.Errorf("keys: key id: %w", err)
	}
	// "k" first: a base64url id may start with "-", which a command line
	// (latchkey keys retire KID) would take for a flag.
	kid := "k" + base64.RawURLEncoding.EncodeToString(id[:])
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(m.cfg.Rand, 2048)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), m.cfg.Rand)
	default:
		return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: encode %s key: %w", alg, err)
	}
	sealed, err := seal(m.aead, m.cfg.Rand, kid, der)
	clear(der)
	if err != nil {
		return nil, err
	}
	pub := josev4.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
	pubJSON, err := pub.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("keys: encode %s public key: %w", alg, err)
	}
	return &storage.SigningKey{
		ID: kid, Algorithm: alg, PublicJWK: pubJSON, PrivateKey: sealed,
		CreatedAt: norm(created), ActivatesAt: norm(activates),
	}, nil
}

// norm matches the precision the store keeps (UTC, microseconds), so the
// times the manager compares are the times every process reads back.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
