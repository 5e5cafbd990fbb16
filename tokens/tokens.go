// Package tokens holds the admin API's tokens: who may call the admin API,
// with which scope, in which environments, and under whose name a write is
// committed. Only SHA-256 hashes of tokens are stored (in a tokens file, see
// Parse and OpenFile); the token itself is shown once, when it is made
// (Generate), and never again.
//
// A presented token is found by hashing it and comparing the hash with every
// stored hash in constant time (Set.Lookup). Limiter rate-limits failed
// attempts per client and writes per token.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gitflags/gitflags/flagrepo"
)

// Prefix starts every token Generate makes, so that a leaked token is
// recognisable (secret scanners, logs).
const Prefix = "gfa_"

// AdminName and AdminEmail are the name and author email of the token given
// by GITFLAGS_ADMIN_TOKEN (see Admin). The email's .invalid domain (RFC 2606)
// says that commits made with it have no real author: give people and bots
// their own tokens in a tokens file.
const (
	AdminName  = "admin"
	AdminEmail = "admin@gitflags.invalid"
)

// MaxNameLength is the longest token name accepted, in characters.
const MaxNameLength = 100

// Token is the owner and scope of one admin token.
type Token struct {
	Name  string // unique in its tokens file; the author name of its commits
	Email string // the author email of its commits
	Write bool   // false: read-only
	// Environments, when not empty, are the only environments the token
	// may read or write.
	Environments []string

	sum [sha256.Size]byte // SHA-256 of the token: its identity for rate limits
}

// CanRead reports whether the token may read environment env. The empty env
// is what belongs to no environment (the project, its features and segments,
// the server's status), which every token may read.
func (t *Token) CanRead(env string) bool {
	return env == "" || len(t.Environments) == 0 || slices.Contains(t.Environments, env)
}

// CanWrite reports whether the token may write in environment env. The empty
// env is a write that belongs to no one environment (a feature's definition,
// a segment, sync control): only a write token for all environments may.
func (t *Token) CanWrite(env string) bool {
	if !t.Write {
		return false
	}
	if env == "" {
		return len(t.Environments) == 0
	}
	return t.CanRead(env)
}

// Scope is "write" or "read", as in a tokens file.
func (t *Token) Scope() string {
	if t.Write {
		return "write"
	}
	return "read"
}

// Source finds the token a secret belongs to.
type Source interface {
	// Lookup returns the token whose hash is the SHA-256 of secret.
	Lookup(secret string) (*Token, bool)
}

// Set is a fixed set of tokens: a parsed tokens file, or the admin token.
// The zero Set has no tokens.
type Set struct {
	tokens []*Token
}

// Lookup implements Source. It hashes secret and compares the hash with
// every token's, each in constant time and without stopping at a match, so
// the time taken says nothing about how close the secret is to any token.
func (s *Set) Lookup(secret string) (*Token, bool) {
	if s == nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(secret))
	var found *Token
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			found = t
		}
	}
	return found, found != nil
}

// Len returns the number of tokens in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.tokens)
}

// Admin returns the set of one token, secret, with full access (scope write,
// every environment), named AdminName with author AdminEmail: the token of
// GITFLAGS_ADMIN_TOKEN.
func Admin(secret string) *Set {
	return &Set{tokens: []*Token{{Name: AdminName, Email: AdminEmail, Write: true, sum: sha256.Sum256([]byte(secret))}}}
}

// Chain is a Source that asks each of its sources in turn.
type Chain []Source

// Lookup implements Source: the first source's token wins.
func (c Chain) Lookup(secret string) (*Token, bool) {
	for _, s := range c {
		if t, ok := s.Lookup(secret); ok {
			return t, true
		}
	}
	return nil, false
}

// Entry is one token in a tokens file:
//
//	{"name": "ci-bot", "email": "ci@acme.example", "sha256": "<64 hex digits>",
//	 "scope": "write", "environments": ["staging"]}
type Entry struct {
	Name         string   `json:"name"`
	Email        string   `json:"email"`
	SHA256       string   `json:"sha256"`
	Scope        string   `json:"scope"`
	Environments []string `json:"environments,omitempty"`
}

// Generate makes a new random token (Prefix and 64 hex digits: 256 bits)
// and returns it with the hex SHA-256 that a tokens file stores.
func Generate() (secret, sha256Hex string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate a token: %w", err)
	}
	secret = Prefix + hex.EncodeToString(b)
	return secret, Hash(secret), nil
}

// Hash returns the hex SHA-256 of secret, as a tokens file stores it.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CheckName reports what is wrong with a token name: it is a commit's
// author name, so 1 to MaxNameLength printable characters, without '<', '>'
// or spaces around it.
func CheckName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		return fmt.Errorf("%q is not valid UTF-8", name)
	case n == 0:
		return fmt.Errorf("is empty; give the token a name of 1 to %d characters", MaxNameLength)
	case n > MaxNameLength:
		return fmt.Errorf("has %d characters; a token name has at most %d", n, MaxNameLength)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%q starts or ends with a space", name)
	case strings.ContainsAny(name, "<>"):
		return fmt.Errorf("%q contains '<' or '>', which a commit's author name cannot", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) && r != ' ' {
			return fmt.Errorf("%q contains the control or invisible character %U", name, r)
		}
	}
	return nil
}

// CheckEmail reports what is wrong with a token's email: a bare address
// (ci@acme.example, no display name or angle brackets), a commit's author
// email.
func CheckEmail(email string) error {
	if email == "" {
		return fmt.Errorf("is empty; give the address commits made with the token are authored by")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email || strings.ContainsAny(email, "<> \t\r\n") {
		return fmt.Errorf("%q is not a bare email address such as ci@acme.example", email)
	}
	return nil
}

// CheckScope reports what is wrong with a scope: it is "read" or "write".
func CheckScope(scope string) error {
	if scope != "read" && scope != "write" {
		return fmt.Errorf("%q is not a scope: use \"read\" or \"write\"", scope)
	}
	return nil
}

// CheckEnvironment reports what is wrong with an environment's key (the
// name of its directory under environments/).
func CheckEnvironment(env string) error {
	if len(env) > flagrepo.MaxKeyLength || !flagrepo.KeyPattern.MatchString(env) {
		return fmt.Errorf("%q is not an environment key (letters, digits, '_', '.', '-'; starting with a letter or digit; at most %d characters)", env, flagrepo.MaxKeyLength)
	}
	return nil
}

// checkSHA256 reports what is wrong with a stored hash and returns its bytes.
func checkSHA256(h string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return sum, fmt.Errorf("%q is not a SHA-256 hash: 64 hex digits (gitflags token create prints it)", h)
	}
	copy(sum[:], b)
	return sum, nil
}
