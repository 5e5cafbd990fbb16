// Package edit makes the changes the admin API asks for to the documents of a
// flag repository, as a person would make them in an editor: only the fields
// that change, existing key order and number text kept, new keys where the
// template puts them, 2-space indent, one array element per line, a final
// newline. It knows neither Git nor HTTP: each edit reads the current files
// through Files and returns the new file contents with a one-line summary for
// the commit message. The caller validates the resulting repository with
// flagrepo.Load before committing it; this package checks the inputs of each
// edit, returning an *InputError that names the field at fault or a
// *NotFoundError for an unknown feature, segment or environment.
package edit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gitflags/gitflags/flagrepo"
)

// Files reads the current files of the repository being edited.
type Files interface {
	// ReadFile returns the content of the file at path (slash-separated,
	// relative to the repository root), or an error wrapping fs.ErrNotExist
	// when there is no such file.
	ReadFile(path string) ([]byte, error)
}

// Result is what an edit changes.
type Result struct {
	// Changes holds the new content of each file the edit changes, by path; a
	// nil content deletes the file. Empty when nothing changes.
	Changes map[string][]byte
	// Summary says what changed where in one line, for the commit message:
	// `production: new_checkout on, value "express"`.
	Summary string
}

// Then returns the changes of r followed by those of next (made on
// Overlay(files, r.Changes)), with both summaries.
func (r Result) Then(next Result) Result {
	switch {
	case len(next.Changes) == 0:
		return r
	case len(r.Changes) == 0:
		return next
	}
	changes := maps.Clone(r.Changes)
	maps.Copy(changes, next.Changes)
	return Result{Changes: changes, Summary: r.Summary + "; " + next.Summary}
}

// Overlay returns files with changes laid over them, so that a second edit
// sees the result of a first one.
func Overlay(files Files, changes map[string][]byte) Files {
	return overlay{files, changes}
}

type overlay struct {
	files   Files
	changes map[string][]byte
}

func (o overlay) ReadFile(path string) ([]byte, error) {
	if data, ok := o.changes[path]; ok {
		if data == nil {
			return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
		}
		return data, nil
	}
	return o.files.ReadFile(path)
}

// InputError is an input of an edit that cannot be used.
type InputError struct {
	Field   string // the input at fault, as a dotted path: "weights.express", "rules[0]", "value.value"
	Message string // what is wrong with it
}

// Error returns "field: message".
func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// WithField returns err with prefix put before the field of an *InputError
// (prefix "segment_overrides[1]" turns "value" into
// "segment_overrides[1].value"); other errors are returned as they are.
func WithField(prefix string, err error) error {
	var ie *InputError
	if !errors.As(err, &ie) {
		return err
	}
	f := prefix
	if ie.Field != "" {
		f += "." + ie.Field
	}
	return &InputError{Field: f, Message: ie.Message}
}

func inputErr(field, format string, args ...any) *InputError {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFoundError is a feature, segment, environment or segment override that
// does not exist.
type NotFoundError struct {
	Kind string // "feature", "segment", "environment" or "segment override"
	Key  string
}

// Error says what does not exist.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("there is no %s %q", e.Kind, e.Key)
}

// ParseTypedValue reads a value written as Flagsmith's admin API writes
// them, {"type": "string"|"integer"|"boolean", "value": "<text>"}, into a flag
// value (string, int64 or bool). field names the value in the request for
// errors ("value", "environment_default.value").
func ParseTypedValue(field string, data []byte) (flagrepo.Value, error) {
	n, err := parseJSON(data)
	if err != nil {
		return nil, inputErr(field, "not valid JSON: %v", err)
	}
	if n.kind != kObject {
		return nil, inputErr(field, `must be an object {"type": "string"|"integer"|"boolean", "value": "<text>"}`)
	}
	for _, f := range n.fields {
		if f.key != "type" && f.key != "value" {
			return nil, inputErr(field+"."+f.key, `unknown field: a typed value has only "type" and "value"`)
		}
	}
	t, v := n.get("type"), n.get("value")
	if t == nil || t.kind != kString {
		return nil, inputErr(field+".type", `must be "string", "integer" or "boolean"`)
	}
	if v == nil || v.kind != kString {
		return nil, inputErr(field+".value", "must be a string (%s values are written as text too)", t.text)
	}
	switch s := v.text; t.text {
	case "string":
		return s, nil
	case "integer":
		if !isInteger(s) {
			return nil, inputErr(field+".value", "%s is not an integer", quote(s))
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, inputErr(field+".value", "%s is not a 64-bit integer: use a string value for larger numbers", quote(s))
		}
		return i, nil
	case "boolean":
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, inputErr(field+".value", `%s is not a boolean: use "true" or "false"`, quote(s))
	}
	return nil, inputErr(field+".type", `%s is not a value type: use "string", "integer" or "boolean"`, quote(t.text))
}

// isInteger reports whether s is an optional minus sign and decimal digits.
func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// valueType names the type of a flag value; "" for null.
func valueType(v flagrepo.Value) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case bool:
		return "boolean"
	}
	return ""
}

// checkValue normalises v (int and json.Number become int64) and checks it
// is a flag value of the feature's type: the type of f's default value when
// that is set and not null. A feature without a default value takes any value.
func checkValue(field string, f *flagrepo.Feature, v *flagrepo.Value) error {
	switch x := (*v).(type) {
	case nil, bool, int64:
	case int:
		*v = int64(x)
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return inputErr(field, "%s is not a 64-bit integer: write decimals and large numbers as strings", x)
		}
		*v = i
	case string:
		if !utf8.ValidString(x) {
			return inputErr(field, "is not valid UTF-8 text")
		}
	default:
		return inputErr(field, "a flag value is a string, integer, boolean or null, not %T", x)
	}
	if f == nil {
		return nil
	}
	want := valueType(f.Default.Value.Value)
	if got := valueType(*v); want != "" && got != want {
		what := "null"
		if got != "" {
			what = "a " + got
		}
		return inputErr(field, "feature %q has %s values (its default value is %s), not %s", f.Key, want, formatValue(f.Default.Value.Value), what)
	}
	return nil
}

// checkWeights checks a split of feature f between its variants.
func checkWeights(field string, f *flagrepo.Feature, w map[string]float64) error {
	if w == nil {
		return nil
	}
	if !f.Multivariate() {
		return inputErr(field, "feature %q has no variants, so it takes no weights", f.Key)
	}
	total := 0.0
	for _, k := range sortedKeys(w) {
		if f.Variant(k) == nil {
			keys := make([]string, len(f.Variants))
			for i, v := range f.Variants {
				keys[i] = v.Key
			}
			return inputErr(field+"."+k, "feature %q has no variant %q (its variants: %s)", f.Key, k, strings.Join(keys, ", "))
		}
		if x := w[k]; math.IsNaN(x) || x < 0 || x > 100 {
			return inputErr(field+"."+k, "weight %s is not a percentage from 0 to 100", formatFloat(x))
		}
		total += w[k]
	}
	if total > 100+1e-9 {
		return inputErr(field, "weights add up to %s%%; at most 100%% is allowed", formatFloat(total))
	}
	return nil
}

// checkNewKey checks the key of a new feature or segment: valid, and not
// already taken, even in another case (file names must not differ only in case).
func checkNewKey(kind, key string, existing []string) error {
	switch {
	case key == "":
		return inputErr("key", "is required")
	case len(key) > flagrepo.MaxKeyLength:
		return inputErr("key", "is %d characters long; at most %d are allowed", len(key), flagrepo.MaxKeyLength)
	case !flagrepo.KeyPattern.MatchString(key):
		return inputErr("key", "%s is not a valid key: use letters, digits, '_', '.' and '-', starting with a letter or digit", quote(key))
	}
	for _, k := range existing {
		if k == key {
			return inputErr("key", "a %s %q already exists", kind, key)
		}
		if strings.EqualFold(k, key) {
			return inputErr("key", "a %s %q already exists; keys must not differ only in case", kind, k)
		}
	}
	return nil
}

// checkText checks a text input of at most max characters.
func checkText(field, s string, min, max int) error {
	if !utf8.ValidString(s) {
		return inputErr(field, "is not valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		if min > 0 {
			return inputErr(field, "must be %d to %d characters long, not %d", min, max, n)
		}
		return inputErr(field, "is %d characters long; at most %d are allowed", n, max)
	}
	return nil
}

func valueNode(v flagrepo.Value) *node {
	switch x := v.(type) {
	case string:
		return stringNode(x)
	case int64:
		return numberNode(strconv.FormatInt(x, 10))
	case bool:
		return boolNode(x)
	}
	return &node{kind: kNull}
}

// nodeValue reads a flag value node (as flagrepo does); ok is false for a
// node that is not one.
func nodeValue(n *node) (v flagrepo.Value, ok bool) {
	switch n.kind {
	case kNull:
		return nil, true
	case kString:
		return n.text, true
	case kBool:
		return n.text == "true", true
	case kNumber:
		var o flagrepo.OptionalValue
		if o.UnmarshalJSON([]byte(n.text)) != nil {
			return nil, false
		}
		v := o.Value
		if checkValue("", nil, &v) != nil {
			return nil, false
		}
		return v, true
	}
	return nil, false
}

// weightNode writes a percentage, keeping old's text when it is the same number.
func weightNode(w float64, old *node) *node {
	if old != nil && old.kind == kNumber {
		if f, err := strconv.ParseFloat(old.text, 64); err == nil && f == w {
			return old
		}
	}
	return numberNode(formatFloat(w))
}

// weightsNode writes weights as an object, changing old in place: keys kept in
// their order, new keys in variant order, removed keys dropped.
func weightsNode(f *flagrepo.Feature, w map[string]float64, old *node) *node {
	n := objectNode()
	if old != nil && old.kind == kObject {
		for _, fl := range old.fields {
			if x, ok := w[fl.key]; ok {
				n.fields = append(n.fields, field{fl.key, weightNode(x, fl.val)})
			}
		}
	}
	for _, v := range f.Variants {
		if x, ok := w[v.Key]; ok && n.get(v.Key) == nil {
			n.fields = append(n.fields, field{v.Key, weightNode(x, nil)})
		}
	}
	return n
}

// nodeWeights reads a weights object; nil when n is nil.
func nodeWeights(n *node) map[string]float64 {
	if n == nil || n.kind != kObject {
		return nil
	}
	w := make(map[string]float64, len(n.fields))
	for _, f := range n.fields {
		w[f.key], _ = strconv.ParseFloat(f.val.text, 64)
	}
	return w
}

// sameSplit reports whether weights a and b give every variant of f the same
// percentage (a missing variant weighs 0; nil weights are the defaults).
func sameSplit(f *flagrepo.Feature, a, b map[string]float64) bool {
	weight := func(m map[string]float64, v flagrepo.Variant) float64 {
		if m == nil {
			return v.Weight
		}
		return m[v.Key]
	}
	for _, v := range f.Variants {
		if weight(a, v) != weight(b, v) {
			return false
		}
	}
	return true
}

// formatWeights writes a split for a summary: "one_page 25, express 25".
func formatWeights(f *flagrepo.Feature, w map[string]float64) string {
	var parts []string
	for _, v := range f.Variants {
		if x, ok := w[v.Key]; ok {
			parts = append(parts, v.Key+" "+formatFloat(x))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// formatValue writes a value for a summary: JSON, long strings shortened.
func formatValue(v flagrepo.Value) string {
	if s, ok := v.(string); ok {
		if r := []rune(s); len(r) > 40 {
			s = string(r[:39]) + "…"
		}
		return quote(s)
	}
	return strings.TrimSuffix(string(valueNode(v).encode()), "\n")
}

// quote writes s as a JSON string, without HTML escaping.
func quote(s string) string {
	return string(bytes.TrimSuffix(stringNode(s).encode(), []byte("\n")))
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// readDoc reads and parses the file at path; nil when it does not exist.
func readDoc(files Files, path string) (*node, []byte, error) {
	data, err := files.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := parseJSON(data)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if n.kind != kObject {
		return nil, nil, fmt.Errorf("read %s: not a JSON object", path)
	}
	return n, data, nil
}

// changes returns the edit of the file at path from old (nil: absent) to doc
// (nil: delete); nothing when the document is the same.
func changes(path string, old []byte, doc *node) map[string][]byte {
	if doc == nil {
		if old == nil {
			return nil
		}
		return map[string][]byte{path: nil}
	}
	data := doc.encode()
	if old != nil {
		if bytes.Equal(old, data) {
			return nil
		}
		if prev, err := parseJSON(old); err == nil && bytes.Equal(prev.encode(), data) {
			return nil // the same document, only written in another style
		}
	}
	return map[string][]byte{path: data}
}

func featurePath(key string) string     { return "features/" + key + ".json" }
func segmentPath(key string) string     { return "segments/" + key + ".json" }
func environmentPath(env string) string { return "environments/" + env + "/environment.json" }
func statePath(env, key string) string  { return "environments/" + env + "/features/" + key + ".json" }

// The "$schema" of each kind of document, relative to the document.
const (
	featureSchema     = "../schemas/feature.schema.json"
	segmentSchema     = "../schemas/segment.schema.json"
	stateSchema       = "../../../schemas/environment-feature.schema.json"
	environmentSchema = "../../schemas/environment.schema.json"
)

func lookupFeature(snap *flagrepo.Snapshot, key string) (*flagrepo.Feature, error) {
	if f := snap.Features[key]; f != nil {
		return f, nil
	}
	return nil, &NotFoundError{Kind: "feature", Key: key}
}

func lookupSegment(snap *flagrepo.Snapshot, key string) (*flagrepo.Segment, error) {
	if s := snap.Segments[key]; s != nil {
		return s, nil
	}
	return nil, &NotFoundError{Kind: "segment", Key: key}
}

func lookupEnvironment(snap *flagrepo.Snapshot, key string) (*flagrepo.Environment, error) {
	if e := snap.Environments[key]; e != nil {
		return e, nil
	}
	return nil, &NotFoundError{Kind: "environment", Key: key}
}
