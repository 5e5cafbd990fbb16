// Package identities stores identities and their traits: what the Flagsmith
// SDK API persists between requests. Identity overrides come from the flag
// repository; traits live here.
//
// Traits are kept per environment: an environment's identities never see
// another environment's traits, as in Flagsmith. Every write is atomic: a
// change that breaks a limit (see MaxTraits and friends) stores nothing.
package identities

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Limits, enforced by every Store. They are Flagsmith's.
const (
	MaxIdentifierLength = 2000 // characters in an identifier
	MaxKeyLength        = 200  // characters in a trait key (at least 1)
	MaxStringLength     = 2000 // characters in a string trait value
	MaxTraits           = 1000 // traits of one identity
)

// Trait is one trait of an identity. Value is a string, bool, int64,
// float64, or nil (nil in an update deletes the trait).
type Trait struct {
	Key   string `json:"trait_key"`
	Value any    `json:"trait_value"`
}

// Change is a set of trait changes for one identity, for UpdateMany.
type Change struct {
	Identifier string
	Traits     []Trait // nil Value deletes, any other sets
}

// Store persists identities' traits per environment. Implementations are safe
// for concurrent use; a networked store can replace the embedded one.
type Store interface {
	// Traits returns the stored traits of an identity, sorted by key; none
	// (and no error) for an unknown identity.
	Traits(ctx context.Context, env, identifier string) ([]Trait, error)
	// Update applies changes to an identity atomically, creating it when
	// needed: a trait with a nil Value is deleted, any other is set (in
	// order, so the last change of a key wins). It returns the identity's
	// traits after the update, sorted by key. Either every change is stored
	// or none is.
	Update(ctx context.Context, env, identifier string, changes []Trait) ([]Trait, error)
	// UpdateMany applies the changes of several identities in one atomic
	// step: all of them are stored, or none.
	UpdateMany(ctx context.Context, env string, changes []Change) error
	// Increment adds by to an integer trait (a missing trait counts as 0)
	// atomically and returns the new value. A trait holding anything but an
	// integer is an ErrInvalid error.
	Increment(ctx context.Context, env, identifier, key string, by int64) (int64, error)
	// Close releases the store.
	Close() error
}

var (
	// ErrClosed is returned by a closed store.
	ErrClosed = errors.New("identity store is closed")
	// ErrInvalid wraps every error caused by the data given to a store: a
	// limit exceeded, a value of the wrong type. Nothing was stored.
	ErrInvalid = errors.New("invalid identity data")
)

// invalidError is an ErrInvalid error whose message is only its reason.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// CheckIdentifier reports whether identifier is acceptable: 1 to
// MaxIdentifierLength characters of valid UTF-8 without control characters
// (see CheckKey).
func CheckIdentifier(identifier string) error {
	if identifier == "" {
		return invalidf("identifier is empty")
	}
	if err := checkName(identifier); err != "" {
		return invalidf("identifier %s", err)
	}
	if n := utf8.RuneCountInString(identifier); n > MaxIdentifierLength {
		return invalidf("identifier is %d characters long; at most %d are allowed", n, MaxIdentifierLength)
	}
	return nil
}

// CheckKey reports whether key is an acceptable trait key: 1 to
// MaxKeyLength characters of valid UTF-8 without C0 control characters
// (U+0000 to U+001F) or DEL (U+007F). Identifiers and trait keys are names:
// text that does not decode, or that a log line or terminal would show
// differently, would make two names look alike or one name not match
// itself. Trait string values are data, and may hold control characters.
func CheckKey(key string) error {
	if key == "" {
		return invalidf("trait key is empty")
	}
	if err := checkName(key); err != "" {
		return invalidf("trait key %.40q %s", key, err)
	}
	if n := utf8.RuneCountInString(key); n > MaxKeyLength {
		return invalidf("trait key %.40q... is %d characters long; at most %d are allowed", key, n, MaxKeyLength)
	}
	return nil
}

// checkName says what is wrong with a name (an identifier or a trait key),
// or returns "". (A byte below 0x80 is never part of a multi-byte UTF-8
// sequence, so bytes are checked for control characters.)
func checkName(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Sprintf("holds the control character U+%04X at byte %d: control characters (U+0000 to U+001F, U+007F) are not allowed", c, i)
		}
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	return ""
}

// NormalizeValue returns v as one of the value types a Store holds (string,
// bool, int64, float64 or nil), converting other integer types and float32
// (pass a json.Number through ParseNumber first). It checks MaxStringLength.
// Errors are ErrInvalid errors.
func NormalizeValue(v any) (any, error) {
	switch t := v.(type) {
	case nil, bool, int64:
		return v, nil
	case string:
		if !utf8.ValidString(t) {
			return nil, invalidf("string value is not valid UTF-8")
		}
		if n := utf8.RuneCountInString(t); n > MaxStringLength {
			return nil, invalidf("string value is %d characters long; at most %d are allowed", n, MaxStringLength)
		}
		return v, nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, invalidf("number %v is not finite", t)
		}
		return v, nil
	case float32:
		return NormalizeValue(float64(t))
	case int:
		return int64(t), nil
	case int8:
		return int64(t), nil
	case int16:
		return int64(t), nil
	case int32:
		return int64(t), nil
	case uint8:
		return int64(t), nil
	case uint16:
		return int64(t), nil
	case uint32:
		return int64(t), nil
	case uint:
		return NormalizeValue(uint64(t))
	case uint64:
		if t > math.MaxInt64 {
			return nil, invalidf("integer %d does not fit in 64 bits (a signed integer); send it as a string to keep it exact", t)
		}
		return int64(t), nil
	}
	return nil, invalidf("a trait value must be a string, number, boolean or null, not %T", v)
}

// ParseNumber turns the text of a JSON number into a trait value: int64 when
// it is an integer (no fraction or exponent, so 1.0 stays a float), float64
// otherwise. A value is never changed silently: an integer beyond 64 bits, a
// decimal with more significant digits than a 64-bit float holds (17), and a
// number too large or too small (but not 0) for a float are ErrInvalid
// errors, whose message says to send the value as a string.
func ParseNumber(s string) (any, error) {
	isInt := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			isInt = false
			break
		}
	}
	if isInt {
		i, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return i, nil
		}
		if errors.Is(err, strconv.ErrRange) {
			return nil, invalidf("integer %.40s does not fit in 64 bits; send it as a string to keep it exact", s)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, invalidf("number %.40s is out of range for a 64-bit float; send it as a string to keep it exact", s)
	}
	digits, zero := significantDigits(s)
	switch {
	case digits > maxFloatDigits:
		return nil, invalidf("number %.40s has more than %d significant digits, more than a 64-bit float holds (it would become %v); send it as a string to keep it exact", s, maxFloatDigits, f)
	case f == 0 && !zero:
		return nil, invalidf("number %.40s is too small for a 64-bit float (it would become 0); send it as a string to keep it exact", s)
	}
	return f, nil
}

// maxFloatDigits is the number of significant decimal digits that tell any
// two 64-bit floats apart: every float has a decimal form this short
// that reads back as itself.
const maxFloatDigits = 17

// significantDigits counts the significant digits of the mantissa of a
// number's text (leading and trailing zeros do not count), and reports
// whether they are all zeros.
func significantDigits(s string) (n int, zero bool) {
	first, last := -1, -1 // positions of the first and last non-zero digit
	count := 0            // digits up to position i
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 'e' || c == 'E' {
			break
		}
		if c < '0' || c > '9' {
			continue
		}
		count++
		if c != '0' {
			if first < 0 {
				first = count
			}
			last = count
		}
	}
	if first < 0 {
		return 0, true
	}
	return last - first + 1, false
}

// checkTraits validates changes before anything is written.
func checkTraits(changes []Trait) ([]Trait, error) {
	out := make([]Trait, len(changes))
	for i, t := range changes {
		if err := CheckKey(t.Key); err != nil {
			return nil, err
		}
		v, err := NormalizeValue(t.Value)
		if err != nil {
			return nil, invalidf("trait %q: %v", t.Key, err)
		}
		out[i] = Trait{Key: t.Key, Value: v}
	}
	return out, nil
}
