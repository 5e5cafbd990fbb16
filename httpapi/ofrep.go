package httpapi

// OFREP: the OpenFeature Remote Evaluation Protocol (v0.3).
//
//	POST /ofrep/v1/evaluate/flags/{key}  one flag
//	POST /ofrep/v1/evaluate/flags        every flag, with an ETag
//	GET  /ofrep/v1/event-stream          change notifications (ofrepstream.go)
//
// Authentication is the environment key (client key, or "ser." server key)
// as "Authorization: Bearer <key>" (the scheme in any case) or
// "X-API-Key: <key>"; a missing or unknown key is a 401 GENERAL error.
//
// The request body is {"context": {...}}. Its "targetingKey" is the identity
// identifier; every other context member is a trait, any JSON value. Without
// a targetingKey (absent, null or "") the flags are the environment's values,
// the same for everyone: a targetingKey is what bucketing hashes, so no split
// ever applies without one, and TARGETING_KEY_MISSING is never returned.
// Traits are only read, never stored. The targetingKey and the context's
// keys are an identifier and trait keys, checked as the identity endpoints
// check them (identities.CheckIdentifier and CheckKey: no control
// characters); text that is not Unicode is refused anywhere in the body
// (checkText), since encoding/json would replace it with U+FFFD.
//
// Values and reasons:
//   - a disabled flag answers reason "DISABLED" and no "value", which tells
//     the OpenFeature SDK to use the code default;
//   - an enabled flag's value is its value, or true when it has none (a
//     boolean switch);
//   - reason "STATIC" when the flag has no targeting in the environment (no
//     segment overrides, identity overrides or variants), "DEFAULT" when it
//     has some but none applied, "TARGETING_MATCH" with metadata
//     {"segment": name} for a segment or identity override
//     ("identity_overrides"), "SPLIT" with the variant's key for a
//     percentage split ("control" when the identity fell outside every
//     variant's band).
//
// Flags that only server keys may see (server_key_only) do not exist for
// client keys, and with hide_disabled_flags a disabled flag does not exist
// either (404 FLAG_NOT_FOUND, left out of bulk answers).
//
// The bulk ETag is a hash of (what decides this environment's answers, the
// kind of key, the raw request body): a request whose If-None-Match holds it
// gets a 304 after reading and hashing the body, with no parsing and no
// evaluation. "What decides the answers" is the environment digest
// (served.Env.Digest: the environment's id, name and client key, and every
// feature's and segment's encoded input), so that a commit that changes
// nothing for an environment (or a restart, or another replica) keeps its
// ETags valid.
//
// The answers that do not depend on the request are encoded in advance
// with each revision (package served, ofrep.go); this file reads requests
// and writes answers.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/identities"
	"github.com/gitflags/gitflags/served"
)

// ofrepMaxBody is the largest request body read; larger ones get a 413.
const ofrepMaxBody = 1 << 20

// ofrepMaxDepth bounds the nesting of the request body (the body object
// counts as 1, the context as 2).
const ofrepMaxDepth = 64

// OFREP error codes.
const (
	ofrepParseError     = "PARSE_ERROR"
	ofrepInvalidContext = "INVALID_CONTEXT"
	ofrepFlagNotFound   = "FLAG_NOT_FOUND"
	ofrepGeneral        = "GENERAL"
)

// ofrepRequest is the per-request scratch space, pooled.
type ofrepRequest struct {
	buf    []byte // ETag seed, then the body
	out    []byte
	flags  []evaluator.Flag
	traits map[string]any
	id     evaluator.Identity
	hasID  bool
	etag   [2 + 2*16]byte // "<32 hex digits>"
}

var ofrepPool = sync.Pool{New: func() any {
	return &ofrepRequest{buf: make([]byte, 0, 1024), out: make([]byte, 0, 1024)}
}}

func getOFREPRequest() *ofrepRequest { return ofrepPool.Get().(*ofrepRequest) }

func putOFREPRequest(rq *ofrepRequest) {
	if cap(rq.buf) > 64<<10 {
		rq.buf = make([]byte, 0, 1024)
	}
	if cap(rq.out) > 256<<10 {
		rq.out = make([]byte, 0, 1024)
	}
	if len(rq.traits) > 64 {
		rq.traits = nil
	} else {
		clear(rq.traits)
	}
	rq.flags = rq.flags[:0]
	rq.id = evaluator.Identity{}
	rq.hasID = false
	ofrepPool.Put(rq)
}

var ofrepChallenge = []string{`Bearer realm="gitflags"`}

// ofrepEnvironment authenticates the request, writing a 401 (or a 503 before
// the first Publish) and returning nil when that fails.
func (s *Server) ofrepEnvironment(w http.ResponseWriter, r *http.Request) (es *envState, server bool) {
	st := s.current.Load()
	if st == nil {
		ofrepError(w, http.StatusServiceUnavailable, "", ofrepGeneral, "no valid revision loaded yet")
		return nil, false
	}
	key, ok := bearerToken(r)
	if !ok {
		key = r.Header.Get("X-API-Key")
	}
	if key != "" {
		es, server = st.Lookup(key)
	}
	if es == nil {
		w.Header()["Www-Authenticate"] = ofrepChallenge
		ofrepError(w, http.StatusUnauthorized, "", ofrepGeneral, "missing or unknown environment key: send Authorization: Bearer <key> or X-API-Key: <key>")
		return nil, false
	}
	if pst, pes, perr := s.preview(r, key, es, server); perr != nil {
		ofrepError(w, perr.status, "", ofrepGeneral, perr.msg)
		return nil, false
	} else if pes != nil {
		markPreview(w, pst)
		return pes, server
	}
	return es, server
}

// readBody appends the request body to rq.buf. It writes the error answer
// and returns false when the body is too large or cannot be read.
func (rq *ofrepRequest) readBody(w http.ResponseWriter, r *http.Request, key string) bool {
	if r.ContentLength > ofrepMaxBody {
		ofrepError(w, http.StatusRequestEntityTooLarge, key, ofrepGeneral, "the request body exceeds 1 MiB")
		return false
	}
	if r.ContentLength > 0 {
		rq.buf = ofrepGrow(rq.buf, int(r.ContentLength)+1)
	}
	start := len(rq.buf)
	for {
		if len(rq.buf) == cap(rq.buf) {
			rq.buf = ofrepGrow(rq.buf, 4096)
		}
		n, err := r.Body.Read(rq.buf[len(rq.buf):cap(rq.buf)])
		rq.buf = rq.buf[:len(rq.buf)+n]
		if len(rq.buf)-start > ofrepMaxBody {
			ofrepError(w, http.StatusRequestEntityTooLarge, key, ofrepGeneral, "the request body exceeds 1 MiB")
			return false
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				ofrepError(w, http.StatusRequestEntityTooLarge, key, ofrepGeneral, "the request body is too large")
			} else {
				ofrepError(w, http.StatusBadRequest, key, ofrepParseError, "reading the request body failed: "+err.Error())
			}
			return false
		}
	}
}

func ofrepGrow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+max(n, cap(b)))
	copy(nb, b)
	return nb
}

// parse decodes the body into rq.id, writing a 400 and returning false when
// it is not a valid request.
func (rq *ofrepRequest) parse(w http.ResponseWriter, body []byte, key string) bool {
	p := ofrepParser{data: body}
	code, detail := p.request(rq)
	if code == "" && p.decoded {
		code, detail = ofrepCheckText(body)
	}
	if code == "" {
		if detail = rq.checkNames(); detail != "" {
			code = ofrepInvalidContext
		}
	}
	if code != "" {
		ofrepError(w, http.StatusBadRequest, key, code, detail)
		return false
	}
	if len(rq.traits) > 0 {
		rq.id.Traits = rq.traits
	}
	return true
}

// ofrepCheckText refuses text that is not Unicode anywhere in body (a
// valid JSON object), as the identity endpoints do (checkText): the error is
// INVALID_CONTEXT when the text is in the context, else PARSE_ERROR.
func ofrepCheckText(body []byte) (code, detail string) {
	e := checkText(body)
	if e == nil {
		return "", ""
	}
	off, _ := badText(body)
	path, _ := jsonPathAt(body, off)
	if path == "context" || strings.HasPrefix(path, "context.") || strings.HasPrefix(path, "context[") {
		return ofrepInvalidContext, e.msg
	}
	return ofrepParseError, e.msg
}

// checkNames checks the parsed targeting key as an identifier and the
// context's keys as trait keys, returning why one is not acceptable (for
// several bad keys, the first in byte order) or "".
func (rq *ofrepRequest) checkNames() string {
	if rq.hasID {
		if err := identities.CheckIdentifier(rq.id.Identifier); err != nil {
			return "context.targetingKey: " + err.Error()
		}
	}
	var bad error
	var badKey string
	for k := range rq.traits {
		if err := identities.CheckKey(k); err != nil && (bad == nil || k < badKey) {
			bad, badKey = err, k
		}
	}
	if bad != nil {
		return "context: " + bad.Error()
	}
	return ""
}

// ofrepBulk serves POST /ofrep/v1/evaluate/flags.
func (s *Server) ofrepBulk(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	es, server := s.ofrepEnvironment(w, r)
	if es == nil {
		return
	}
	if es = s.ofrepAwaitConfig(w, r, es); es == nil {
		return
	}
	o := es.OFREP()
	rq := getOFREPRequest()
	defer putOFREPRequest(rq)
	rq.buf = append(rq.buf[:0], o.Seed(server)...)
	if !rq.readBody(w, r, "") {
		return
	}
	sum := sha256.Sum256(rq.buf)
	rq.etag[0] = '"'
	hex.Encode(rq.etag[1:len(rq.etag)-1], sum[:16])
	rq.etag[len(rq.etag)-1] = '"'
	h := w.Header()
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && ofrepETagMatch(inm, rq.etag[:]) {
		h["Etag"] = []string{string(rq.etag[:])}
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if !rq.parse(w, rq.buf[served.OFREPSeedLen:], "") {
		return
	}
	body, length := o.Bulk(server)
	if rq.hasID {
		s.metrics.ofrepEvaluations.Inc()
		rq.flags = es.Model().AppendFlags(rq.flags[:0], &rq.id)
		rq.out = o.AppendBulk(rq.out[:0], rq.flags, server)
		body, length = rq.out, []string{strconv.Itoa(len(rq.out))}
	}
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = length
	h["Etag"] = []string{string(rq.etag[:])}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// ofrepFlag serves POST /ofrep/v1/evaluate/flags/{key}.
func (s *Server) ofrepFlag(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	es, server := s.ofrepEnvironment(w, r)
	if es == nil {
		return
	}
	o := es.OFREP()
	name := p.ByName("key")
	rq := getOFREPRequest()
	defer putOFREPRequest(rq)
	rq.buf = rq.buf[:0]
	if !rq.readBody(w, r, name) {
		return
	}
	if !rq.parse(w, rq.buf, name) {
		return
	}
	i, ok := es.FeatureIndex(name)
	var f *served.OFREPFeature
	if ok {
		f = o.Feature(i)
		ok = server || !f.ServerKeyOnly()
	}
	if !ok {
		ofrepError(w, http.StatusNotFound, name, ofrepFlagNotFound, "no flag "+strconv.Quote(name)+" in this environment")
		return
	}
	body, length := f.Answer()
	hidden := f.Hidden()
	if rq.hasID && !f.Static() {
		s.metrics.ofrepEvaluations.Inc()
		fl, _ := es.Model().Flag(name, &rq.id)
		hidden = o.HidesDisabledFlags() && !fl.Enabled
		rq.out = f.AppendFlag(rq.out[:0], &fl)
		body, length = rq.out, []string{strconv.Itoa(len(rq.out))}
	}
	if hidden {
		ofrepError(w, http.StatusNotFound, name, ofrepFlagNotFound, "no flag "+strconv.Quote(name)+" in this environment")
		return
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// ofrepETagMatch reports whether an If-None-Match header lists etag (weak
// comparison, as RFC 9110 prescribes for If-None-Match). "*" does not match:
// it would answer 304 to a body never seen, even an invalid one.
func ofrepETagMatch(values []string, etag []byte) bool {
	for _, v := range values {
		if v == string(etag) { // the common case: exactly the ETag sent
			return true
		}
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			t = strings.TrimSpace(t)
			t = strings.TrimPrefix(t, "W/")
			if t == string(etag) {
				return true
			}
		}
	}
	return false
}

// ofrepError writes an OFREP error answer: {"key"?, "errorCode"?,
// "errorDetails"}.
func ofrepError(w http.ResponseWriter, status int, key, code, detail string) {
	b := make([]byte, 0, 64+len(key)+len(detail))
	b = append(b, '{')
	if key != "" {
		b = append(b, `"key":`...)
		b = served.AppendJSONString(b, key)
		b = append(b, ',')
	}
	if code != "" {
		b = append(b, `"errorCode":"`...)
		b = append(b, code...)
		b = append(b, `",`...)
	}
	b = append(b, `"errorDetails":`...)
	b = served.AppendJSONString(b, detail)
	b = append(b, '}')
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ofrepParser decodes an OFREP request body: a JSON object whose "context"
// member holds the targeting key and the traits. It accepts exactly what
// encoding/json accepts (bodies nested deeper than ofrepMaxDepth aside),
// decodes numbers as json.Number, and takes the last of duplicate members.
type ofrepParser struct {
	data []byte
	src  string // data as a string: decoded strings are substrings of it
	pos  int
	err  string // the first syntax error
	deep bool   // the error is the nesting limit
	// decoded reports a string that had escapes or invalid UTF-8 (decoded
	// by encoding/json): only such a body may hold text that is not Unicode.
	decoded bool
}

// request parses the body into rq. An empty body is an empty request.
func (p *ofrepParser) request(rq *ofrepRequest) (code, detail string) {
	p.ws()
	if p.pos == len(p.data) {
		return "", ""
	}
	p.src = string(p.data)
	if p.data[p.pos] != '{' {
		p.value(1, false)
		if p.err == "" {
			return ofrepParseError, `the request body must be a JSON object: {"context": {...}}`
		}
		return ofrepParseError, p.err
	}
	var ctxErr string
	p.pos++
	p.ws()
	if p.peek() == '}' {
		p.pos++
	} else {
		for p.err == "" {
			p.ws()
			k, ok := p.str()
			if !ok || !p.colon() {
				break
			}
			if k == "context" {
				ctxErr = p.context(rq)
			} else {
				p.value(2, false)
			}
			if !p.next('}') {
				break
			}
		}
	}
	p.ws()
	if p.err == "" && p.pos < len(p.data) {
		p.fail("unexpected data after the request object")
	}
	if p.err != "" {
		return ofrepParseError, p.err
	}
	if ctxErr != "" {
		return ofrepInvalidContext, ctxErr
	}
	return "", ""
}

// context parses the context member (the last one counts), returning why it
// is not a valid context.
func (p *ofrepParser) context(rq *ofrepRequest) string {
	clear(rq.traits)
	rq.id, rq.hasID = evaluator.Identity{}, false
	switch p.peek() {
	case 'n':
		p.value(2, false)
		return ""
	case '{':
	default:
		p.value(2, false)
		return "the context must be a JSON object"
	}
	p.pos++
	p.ws()
	if p.peek() == '}' {
		p.pos++
		return ""
	}
	var tkErr string
	for p.err == "" {
		p.ws()
		k, ok := p.str()
		if !ok || !p.colon() {
			break
		}
		if k == "targetingKey" {
			tkErr = ""
			rq.id.Identifier, rq.hasID = "", false
			switch p.peek() {
			case '"':
				if s, ok := p.str(); ok && s != "" {
					rq.id.Identifier, rq.hasID = s, true
				}
			case 'n':
				p.value(3, false)
			default:
				p.value(3, false)
				tkErr = "targetingKey must be a string"
			}
		} else {
			v := p.value(3, true)
			if rq.traits == nil {
				rq.traits = make(map[string]any, 8)
			}
			rq.traits[k] = v
		}
		if !p.next('}') {
			break
		}
	}
	return tkErr
}

func (p *ofrepParser) fail(msg string) {
	if p.err == "" {
		if p.pos < len(p.data) {
			p.err = fmt.Sprintf("invalid JSON at offset %d (%q): %s", p.pos, p.data[p.pos], msg)
		} else {
			p.err = "invalid JSON: " + msg
		}
	}
	p.pos = len(p.data)
}

func (p *ofrepParser) peek() byte {
	if p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

func (p *ofrepParser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *ofrepParser) colon() bool {
	p.ws()
	if p.peek() != ':' {
		p.fail("':' expected after an object key")
		return false
	}
	p.pos++
	p.ws()
	return true
}

// next consumes the separator after a member or element: it returns true
// after ',' and false after end (or on an error).
func (p *ofrepParser) next(end byte) bool {
	p.ws()
	switch p.peek() {
	case ',':
		p.pos++
		return true
	case end:
		p.pos++
		return false
	}
	if end == '}' {
		p.fail("',' or '}' expected in an object")
	} else {
		p.fail("',' or ']' expected in an array")
	}
	return false
}

// value parses any JSON value at nesting depth depth; with build it returns
// it as encoding/json with UseNumber would.
func (p *ofrepParser) value(depth int, build bool) any {
	if depth > ofrepMaxDepth {
		p.fail(fmt.Sprintf("nested deeper than %d levels", ofrepMaxDepth))
		p.deep = true
		return nil
	}
	switch c := p.peek(); {
	case c == '"':
		s, _ := p.str()
		if build {
			return s
		}
	case c == '{':
		p.pos++
		var m map[string]any
		if build {
			m = map[string]any{}
		}
		p.ws()
		if p.peek() == '}' {
			p.pos++
			return m
		}
		for p.err == "" {
			p.ws()
			k, ok := p.str()
			if !ok || !p.colon() {
				break
			}
			v := p.value(depth+1, build)
			if build {
				m[k] = v
			}
			if !p.next('}') {
				break
			}
		}
		if build && p.err == "" {
			return m
		}
	case c == '[':
		p.pos++
		var a []any
		if build {
			a = []any{}
		}
		p.ws()
		if p.peek() == ']' {
			p.pos++
			return a
		}
		for p.err == "" {
			p.ws()
			v := p.value(depth+1, build)
			if build {
				a = append(a, v)
			}
			if !p.next(']') {
				break
			}
		}
		if build && p.err == "" {
			return a
		}
	case c == 't':
		if p.literal("true") {
			return true
		}
	case c == 'f':
		if p.literal("false") && build {
			return false
		}
	case c == 'n':
		p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		if p.number() && build {
			return json.Number(p.src[start:p.pos])
		}
	default:
		if p.pos == len(p.data) {
			p.fail("unexpected end of the body")
		} else {
			p.fail("a JSON value expected")
		}
	}
	return nil
}

func (p *ofrepParser) literal(lit string) bool {
	if len(p.data)-p.pos >= len(lit) && string(p.data[p.pos:p.pos+len(lit)]) == lit {
		p.pos += len(lit)
		return true
	}
	p.fail("a JSON value expected")
	return false
}

// number consumes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *ofrepParser) number() bool {
	if p.peek() == '-' {
		p.pos++
	}
	switch c := p.peek(); {
	case c == '0':
		p.pos++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		p.fail("a digit expected")
		return false
	}
	if p.peek() == '.' {
		p.pos++
		if !p.digits() {
			p.fail("a digit expected after the decimal point")
			return false
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if !p.digits() {
			p.fail("a digit expected in the exponent")
			return false
		}
	}
	return true
}

func (p *ofrepParser) digits() bool {
	start := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// str parses a string. Plain strings are substrings of p.src; strings with
// escapes or invalid UTF-8 are decoded by encoding/json.
func (p *ofrepParser) str() (string, bool) {
	if p.peek() != '"' {
		if p.pos == len(p.data) {
			p.fail("unexpected end of the body")
		} else {
			p.fail("a string expected")
		}
		return "", false
	}
	start := p.pos
	p.pos++
	plain, ascii := true, true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if plain && (ascii || utf8.ValidString(p.src[start+1:p.pos-1])) {
				return p.src[start+1 : p.pos-1], true
			}
			p.decoded = true
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				p.pos = start
				p.fail("invalid string: " + err.Error())
				return "", false
			}
			return s, true
		case c == '\\':
			plain = false
			p.pos++
			switch p.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos++
			case 'u':
				p.pos++
				for range 4 {
					if !ofrepIsHex(p.peek()) {
						p.fail("four hex digits expected after \\u")
						return "", false
					}
					p.pos++
				}
			default:
				p.fail("invalid escape sequence")
				return "", false
			}
		case c < 0x20:
			p.fail("control character in a string")
			return "", false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			p.pos++
		}
	}
	p.fail("unterminated string")
	return "", false
}

func ofrepIsHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
