package served

// OFREP's answers (the OpenFeature Remote Evaluation Protocol), encoded in
// advance: each flag's answer without a targeting key, the answers a flag
// can have with one (its default, each segment and identity override, each
// split band), and the bulk answers without a targeting key, with the seeds
// of their ETags (a hash of the environment digest and the kind of key:
// httpapi hashes the request body after it). Reasons, values and what is
// hidden are described in httpapi's ofrep.go.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
)

// OFREPEventStreamPath is the path of OFREP's event stream, which every
// bulk answer announces (eventStreams).
const OFREPEventStreamPath = "/ofrep/v1/event-stream"

// ofrepETagFormat changes whenever the answers for the same input may change
// (encoding, reasons), so that old ETags stop matching.
const ofrepETagFormat = "gitflags-ofrep-1"

// OFREP is one environment's precomputed OFREP answers.
type OFREP struct {
	features     []*OFREPFeature // in model (feature) order
	hideDisabled bool
	// seed[v] prefixes the request body in the ETag hash; v is 1 for
	// server keys, 0 for client keys (they see different flags).
	seed [2][OFREPSeedLen]byte
	// bulk is, for v, the bulk answer without a targeting key and its
	// length in decimal, concatenated when first asked for.
	bulk func() ofrepBulk
	// streams is the bulk answers' eventStreams member, with its leading
	// comma (see ofrepStreamsJSON).
	streams []byte
}

// OFREPSeedLen is the length of an ETag seed (OFREP.Seed).
const OFREPSeedLen = sha256.Size + 1

// OFREPFeature is one flag's precomputed OFREP answers.
type OFREPFeature struct {
	keyJSON    []byte // {"key":"<name>"
	static     bool   // no targeting in this environment: reason STATIC
	serverOnly bool   // hidden from client keys
	hidden     bool   // disabled without identity and hide_disabled_flags
	outcomes   []ofrepOutcome
	// single is the answer without a targeting key (and, for a static
	// flag, with any context).
	single    []byte
	singleLen []string
}

// newOFREPFeature encodes in advance the answers of a feature with state r
// whose evaluation without an identity is flag.
func newOFREPFeature(r *flagrepo.Resolved, flag *evaluator.Flag, hideDisabled bool) OFREPFeature {
	f := OFREPFeature{
		keyJSON:    AppendJSONString([]byte(`{"key":`), r.Feature.Key),
		static:     len(r.SegmentOverrides) == 0 && len(r.IdentityOverrides) == 0 && len(r.Weights) == 0,
		serverOnly: r.Feature.ServerKeyOnly,
		hidden:     hideDisabled && !flag.Enabled,
		outcomes:   make([]ofrepOutcome, 0, 2),
	}
	f.addOutcomes(r)
	f.single = f.AppendFlag(nil, flag)
	f.singleLen = []string{strconv.Itoa(len(f.single))}
	return f
}

// assembleOFREP concatenates the bulk answers of es and derives its ETag
// seeds from the environment digest.
func assembleOFREP(es *Env, hideDisabled bool) {
	o := &es.ofrep
	o.hideDisabled = hideDisabled
	o.streams = ofrepStreamsJSON(es)
	o.features = make([]*OFREPFeature, len(es.features))
	size := 16 + len(o.streams)
	for i, f := range es.features {
		o.features[i] = &f.ofrep
		size += len(f.ofrep.single) + 1
	}
	for v := range 2 {
		copy(o.seed[v][:], es.digest[:])
		o.seed[v][sha256.Size] = byte(v)
	}
	o.bulk = sync.OnceValue(func() ofrepBulk {
		var bulk ofrepBulk
		for v := range 2 {
			// Without an identity every flag answers its single answer.
			b := make([]byte, 0, size)
			b = append(b, `{"flags":[`...)
			first := true
			for _, f := range o.features {
				if f.hidden || (f.serverOnly && v == 0) {
					continue
				}
				if !first {
					b = append(b, ',')
				}
				first = false
				b = append(b, f.single...)
			}
			b = append(b, ']')
			b = append(b, o.streams...)
			bulk.body[v] = append(b, '}')
			bulk.length[v] = []string{strconv.Itoa(len(bulk.body[v]))}
		}
		return bulk
	})
}

// ofrepBulk are the bulk answers without a targeting key, by v (1 for
// server keys), and their lengths in decimal.
type ofrepBulk struct {
	body   [2][]byte
	length [2][]string
}

// addOutcomes encodes in advance the answers a flag with state r can have:
// its default, each segment and identity override, and each split's bands.
func (f *OFREPFeature) addOutcomes(r *flagrepo.Resolved) {
	def := "DEFAULT"
	if f.static {
		def = "STATIC"
	}
	eachOutcome(r, def, f.addOutcome)
}

// ofrepBuild identifies the server build, so that an upgrade (which may
// evaluate differently) does not leave clients on a stale 304.
var ofrepBuild = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	s := bi.Main.Path + "@" + bi.Main.Version
	for _, kv := range bi.Settings {
		if kv.Key == "vcs.revision" || kv.Key == "vcs.modified" {
			s += " " + kv.Key + "=" + kv.Value
		}
	}
	return s
})

// visible reports whether a flag with state fl exists for the caller.
func (o *OFREP) visible(f *OFREPFeature, fl *evaluator.Flag, server bool) bool {
	return (server || !f.serverOnly) && (fl.Enabled || !o.hideDisabled)
}

// AppendBulk appends the bulk answer for flags, an evaluation of every flag
// in feature order, for a server key or a client key.
func (o *OFREP) AppendBulk(b []byte, flags []evaluator.Flag, server bool) []byte {
	b = append(b, `{"flags":[`...)
	first := true
	for i := range flags {
		f := o.features[i]
		if !o.visible(f, &flags[i], server) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = f.AppendFlag(b, &flags[i])
	}
	b = append(b, ']')
	b = append(b, o.streams...)
	return append(b, '}')
}

const (
	ofrepReasonTargeting = "TARGETING_MATCH; segment="
	ofrepReasonSplit     = "SPLIT; "
)

// ofrepReason maps an evaluator reason to OFREP's reason and the segment
// reported in the metadata.
func ofrepReason(f *OFREPFeature, fl *evaluator.Flag) (reason, segment string) {
	switch {
	case fl.Reason == "DEFAULT":
		if fl.Variant == evaluator.ControlVariant {
			return "SPLIT", "" // bucketed, into the control band
		}
		if f.static {
			return "STATIC", ""
		}
		return "DEFAULT", ""
	case strings.HasPrefix(fl.Reason, ofrepReasonTargeting):
		return "TARGETING_MATCH", fl.Reason[len(ofrepReasonTargeting):]
	case strings.HasPrefix(fl.Reason, ofrepReasonSplit):
		return "SPLIT", ""
	}
	return "UNKNOWN", ""
}

// ofrepOutcome is one possible answer for a flag, encoded in advance.
type ofrepOutcome struct {
	enabled                  bool
	reason, segment, variant string
	value                    any // a scalar
	body                     []byte
}

// maxOutcomes bounds the answers encoded in advance per flag (OFREP's and
// the identity endpoints').
const maxOutcomes = 16

// AppendFlag appends the flag's success object for fl, an evaluation of it.
func (f *OFREPFeature) AppendFlag(b []byte, fl *evaluator.Flag) []byte {
	reason, segment := ofrepReason(f, fl)
	for i := range f.outcomes {
		c := &f.outcomes[i]
		// A disabled flag's answer shows neither value nor variant.
		if c.enabled == fl.Enabled && c.segment == segment &&
			(!c.enabled || c.reason == reason && c.variant == fl.Variant && sameScalar(c.value, fl.Value)) {
			return append(b, c.body...)
		}
	}
	return ofrepAppendOutcome(b, f, fl.Enabled, reason, segment, fl.Variant, fl.Value)
}

// addOutcome encodes an answer of f in advance.
func (f *OFREPFeature) addOutcome(enabled bool, reason, segment, variant string, value any) {
	if len(f.outcomes) == maxOutcomes || !isScalar(value) {
		return
	}
	if !enabled {
		reason, variant, value = "", "", nil
	}
	for _, c := range f.outcomes {
		if c.enabled == enabled && c.reason == reason && c.segment == segment && c.variant == variant && sameScalar(c.value, value) {
			return
		}
	}
	f.outcomes = append(f.outcomes, ofrepOutcome{
		enabled: enabled, reason: reason, segment: segment, variant: variant, value: value,
		body: ofrepAppendOutcome(nil, f, enabled, reason, segment, variant, value),
	})
}

func isScalar(v any) bool {
	switch v.(type) {
	case nil, string, bool, int64, int:
		return true
	}
	return false
}

// sameScalar reports whether a, a scalar, equals b.
func sameScalar(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case int64:
		bi, ok := b.(int64)
		return ok && a == bi
	case int:
		bi, ok := b.(int)
		return ok && a == bi
	}
	return false
}

// ofrepAppendOutcome encodes a flag's success object.
func ofrepAppendOutcome(b []byte, f *OFREPFeature, enabled bool, reason, segment, variant string, value any) []byte {
	b = append(b, f.keyJSON...)
	if !enabled {
		b = append(b, `,"reason":"DISABLED"`...)
	} else {
		b = append(b, `,"value":`...)
		if value == nil {
			b = append(b, "true"...)
		} else {
			b = AppendJSONValue(b, value)
		}
		b = append(b, `,"reason":"`...)
		b = append(b, reason...)
		b = append(b, '"')
		if variant != "" {
			b = append(b, `,"variant":`...)
			b = AppendJSONString(b, variant)
		}
	}
	if segment != "" {
		b = append(b, `,"metadata":{"segment":`...)
		b = AppendJSONString(b, segment)
		b = append(b, '}')
	}
	return append(b, '}')
}

// Seed returns the prefix of the bulk ETag's hash for a server key or a
// client key (OFREPSeedLen bytes, read-only): the environment digest and
// the kind of key, which see different flags.
func (o *OFREP) Seed(server bool) []byte {
	if server {
		return o.seed[1][:]
	}
	return o.seed[0][:]
}

// Bulk returns the bulk answer without a targeting key for a server key or
// a client key, and its length in decimal (shared: read-only).
func (o *OFREP) Bulk(server bool) (body []byte, length []string) {
	v := 0
	if server {
		v = 1
	}
	b := o.bulk()
	return b.body[v], b.length[v]
}

// Feature returns the answers of the feature at position i (see
// Env.FeatureIndex).
func (o *OFREP) Feature(i int) *OFREPFeature { return o.features[i] }

// HidesDisabledFlags reports whether a disabled flag does not exist for the
// environment's callers (hide_disabled_flags).
func (o *OFREP) HidesDisabledFlags() bool { return o.hideDisabled }

// ServerKeyOnly reports whether only server keys may see the flag.
func (f *OFREPFeature) ServerKeyOnly() bool { return f.serverOnly }

// Static reports whether the flag has no targeting in the environment (no
// segment overrides, identity overrides or variants): every context gets
// its answer without a targeting key.
func (f *OFREPFeature) Static() bool { return f.static }

// Hidden reports whether the flag, evaluated without an identity, does not
// exist for callers: it is disabled and the environment hides disabled
// flags.
func (f *OFREPFeature) Hidden() bool { return f.hidden }

// Answer returns the flag's answer without a targeting key (for a static
// flag, with any context), and its length in decimal (shared: read-only).
func (f *OFREPFeature) Answer() (body []byte, length []string) { return f.single, f.singleLen }

// OFREPConfigID names an environment's configuration by its digest (see
// Env.Digest): the id and etag of OFREP's events.
func OFREPConfigID(d [sha256.Size]byte) string { return hex.EncodeToString(d[:16]) }

// ofrepStreamsJSON is the bulk answer's eventStreams member (with its
// leading comma) for environment es: its event stream, by its client key,
// since its current configuration.
func ofrepStreamsJSON(es *Env) []byte {
	uri := OFREPEventStreamPath + "?key=" + url.QueryEscape(es.env.ClientKey) + "&since=" + OFREPConfigID(es.digest)
	b := []byte(`,"eventStreams":[{"type":"sse","endpoint":{"requestUri":`)
	b = AppendJSONString(b, uri)
	return append(b, "}}]"...)
}
