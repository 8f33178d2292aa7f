// Package apikey mints the keys API clients present as
// `Authorization: Bearer <key>` and turns a presented key into what the
// database stores. It imports nothing of the project.
//
// A key is "po_" followed by SecretLen base62 characters from crypto/rand.
// Only its SHA-256 is stored, with a short prefix a person can recognise in a
// listing; the key itself is shown once, when it is created.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// Prefix starts every key, so a key that leaks into a log or a repository
	// is recognisable (and greppable by secret scanners) as ours.
	Prefix = "po_"
	// SecretLen is the number of random base62 characters after Prefix:
	// 40 × log2(62) ≈ 238 bits, far beyond guessing.
	SecretLen = 40
	// Len is the length of a whole key.
	Len = len(Prefix) + SecretLen
	// displayLen is how much of a key listings show: enough to tell keys
	// apart, too little (8 characters, ~48 bits) to help an attacker.
	displayLen = len(Prefix) + 8
	// NameMaxLen bounds a key's name.
	NameMaxLen = 100
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrNotFound is returned when no key matches: an unknown id, or a hash no
// active key has.
var ErrNotFound = errors.New("api key not found")

// Key is an API key as it is stored and listed: everything but the secret.
type Key struct {
	ID   string
	Name string
	// DisplayPrefix is the key's first characters, for people to tell keys
	// apart in a listing.
	DisplayPrefix string
	CreatedAt     time.Time
	// LastUsedAt is when the key last authenticated a request, to within the
	// API's key cache interval; nil if never.
	LastUsedAt *time.Time
	// RevokedAt is when the key was revoked; nil while it is active.
	RevokedAt *time.Time
	// Scope is what the key may do.
	Scope Scope
	// Owner names the checkout service the key belongs to: a checkout key
	// acts on its owner's payments only, and its client Idempotency-Keys
	// are its owner's, shared with the owner's other keys.
	Owner string
}

// Scope is what a key may do. The values are stored, so they never change
// meaning.
type Scope string

// The scopes.
const (
	// ScopeCheckout creates, confirms, cancels and reads payments: what a
	// checkout service needs, and what every key made before scopes was.
	ScopeCheckout Scope = "checkout"
	// ScopeOperator may do everything: the checkout's calls, the attention
	// list, the operator actions and the console.
	ScopeOperator Scope = "operator"
	// ScopeReadonly reads payments and the console, and acts on nothing.
	ScopeReadonly Scope = "readonly"
)

// Scopes returns every scope.
func Scopes() []Scope { return []Scope{ScopeCheckout, ScopeOperator, ScopeReadonly} }

// ParseScope returns the scope named s.
func ParseScope(s string) (Scope, error) {
	for _, sc := range Scopes() {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("scope must be checkout, operator or readonly, not %q", s)
}

// Generate returns a new random key. The caller shows it once and stores
// only Hash(key).
func Generate() (string, error) {
	var b strings.Builder
	b.Grow(Len)
	b.WriteString(Prefix)
	buf := make([]byte, 2*SecretLen)
	for b.Len() < Len {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("error reading random bytes: %w", err)
		}
		for _, c := range buf {
			// Rejection sampling: 248 = 4×62, so bytes below it map onto
			// base62 uniformly; a plain modulo would favour the first eight
			// characters.
			if c >= 248 {
				continue
			}
			b.WriteByte(base62[c%62])
			if b.Len() == Len {
				break
			}
		}
	}
	return b.String(), nil
}

// Hash returns what is stored for a key and what a presented key is looked
// up by.
//
// Why SHA-256 and not bcrypt or argon2: slow, salted hashes protect
// low-entropy secrets (passwords) from offline guessing. A key carries ~238
// random bits, so a leaked table of plain SHA-256 hashes cannot be reversed
// by guessing either, and an unsalted hash can be looked up through a unique
// index: authentication costs one index probe instead of a deliberate
// 100 ms of CPU per request.
func Hash(key string) [sha256.Size]byte {
	return sha256.Sum256([]byte(key))
}

// WellFormed reports whether s has the shape of a key. A request carrying
// anything else is refused without a database round trip.
func WellFormed(s string) bool {
	secret, ok := strings.CutPrefix(s, Prefix)
	if !ok || len(secret) != SecretLen {
		return false
	}
	for i := 0; i < len(secret); i++ {
		if strings.IndexByte(base62, secret[i]) < 0 {
			return false
		}
	}
	return true
}

// DisplayPrefix returns the part of key that listings show.
func DisplayPrefix(key string) string {
	if len(key) < displayLen {
		return key
	}
	return key[:displayLen]
}

// ValidateName checks a key's name: what it is for, such as the service
// that holds it.
func ValidateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("the key's name must not be blank")
	}
	if utf8.RuneCountInString(name) > NameMaxLen {
		return fmt.Errorf("the key's name must be at most %d characters", NameMaxLen)
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return errors.New("the key's name must be valid UTF-8 without control characters")
	}
	return nil
}
