package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/tokens"
)

// testTokens are the tokens of the admin auth tests, by secret: name, email,
// scope and environments as in a tokens file.
var testTokens = map[string]string{
	"writer-secret":         `"name": "writer", "email": "writer@acme.example", "scope": "write"`,
	"reader-secret":         `"name": "reader", "email": "reader@acme.example", "scope": "read"`,
	"staging-writer-secret": `"name": "staging-writer", "email": "sw@acme.example", "scope": "write", "environments": ["staging"]`,
	"staging-reader-secret": `"name": "staging-reader", "email": "sr@acme.example", "scope": "read", "environments": ["staging", "development"]`,
}

// testTokenSource is a parsed tokens file of testTokens, after the admin
// token adminToken.
func testTokenSource(t *testing.T) tokens.Source {
	t.Helper()
	var entries []string
	for secret, members := range testTokens {
		entries = append(entries, fmt.Sprintf(`{"sha256": %q, %s}`, tokens.Hash(secret), members))
	}
	set, err := tokens.Parse("tokens.json", []byte(`{"tokens": [`+strings.Join(entries, ",")+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	return tokens.Chain{tokens.Admin(adminToken), set}
}

// manualClock is a clock the test moves.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// authServer serves nothing published yet, with testTokenSource and limits, plus two
// test routes that check an environment: GET and POST /test/env/:env answer
// the caller's name and email when allowEnvironment lets them through.
func authServer(t *testing.T, limits tokens.Limits) *httptest.Server {
	t.Helper()
	s := New(Options{Tokens: testTokenSource(t), TokenLimits: limits, Log: ofrepQuietLog})
	api := s.Handler()
	r := httprouter.New()
	for _, write := range []bool{false, true} {
		method := map[bool]string{false: http.MethodGet, true: http.MethodPost}[write]
		r.Handle(method, "/test/env/:env", s.admin(write, func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
			if allowEnvironment(w, r, p.ByName("env"), write) {
				tok := callerToken(r)
				writeJSON(w, http.StatusOK, map[string]string{"name": tok.Name, "email": tok.Email})
			}
		}))
	}
	r.NotFound = api
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return ts
}

// detail returns the "detail" of an error body, failing unless the body is
// {"detail": "..."} JSON.
func detail(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	var d struct{ Detail string }
	if err := json.Unmarshal(body, &d); err != nil || d.Detail == "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%d %s: not a {\"detail\"} JSON error", resp.StatusCode, body)
	}
	return d.Detail
}

// TestAdminAuthSchemes: Api-Key (Flagsmith), Token and Bearer, in any case;
// 401 with WWW-Authenticate and a detail saying what is wrong otherwise.
func TestAdminAuthSchemes(t *testing.T) {
	ts := authServer(t, tokens.Limits{})
	for _, scheme := range []string{"Api-Key", "Token", "Bearer", "api-key", "TOKEN", "bearer"} {
		for _, secret := range []string{adminToken, "reader-secret"} {
			resp, body := send(t, "GET", ts.URL+"/api/v1/status", "", "Authorization", scheme+" "+secret)
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"served":`) {
				t.Errorf("%s: %d %s", scheme, resp.StatusCode, body)
			}
		}
	}
	for _, c := range []struct{ auth, want string }{
		{"", "admin endpoints need a token: Authorization: Api-Key <token> (or Token <token>, Bearer <token>)"},
		{"Basic " + adminToken, `the Authorization scheme "Basic" is not accepted`},
		{"Api-Key", `the Authorization scheme "Api-Key" is not accepted`},
		{"Api-Key ", `the Authorization scheme "Api-Key" is not accepted`},
		{"Api-Key wrong", "invalid admin token"},
		{"Token " + tokens.Hash(adminToken), "invalid admin token"},
	} {
		resp, body := send(t, "GET", ts.URL+"/api/v1/status", "", "Authorization", c.auth)
		if resp.StatusCode != 401 || !strings.Contains(detail(t, resp, body), c.want) {
			t.Errorf("%q: %d %s, want 401 %s", c.auth, resp.StatusCode, body, c.want)
		}
		if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `Api-Key realm="gitflags admin"`) || !strings.Contains(h, "Bearer") {
			t.Errorf("%q: WWW-Authenticate %q", c.auth, h)
		}
	}
}

// TestAdminScopes: status needs read, sync control needs write for every
// environment; a token limited to environments reads and writes only them.
func TestAdminScopes(t *testing.T) {
	ts := authServer(t, tokens.Limits{})
	// The server follows no repository: a request the token may make gets
	// the sync endpoints' 404 "does not follow a repository".
	cases := []struct {
		secret, method, path string
		want                 int
		detail               string
	}{
		{"reader-secret", "GET", "/api/v1/status", 200, ""},
		{"staging-reader-secret", "GET", "/api/v1/status", 200, ""},
		{"reader-secret", "POST", "/api/v1/sync", 403, `token "reader" is read-only: POST /api/v1/sync needs a token with scope write`},
		{"reader-secret", "POST", "/api/v1/sync/pause", 403, `token "reader" is read-only`},
		{"staging-writer-secret", "POST", "/api/v1/sync/resume", 403, `token "staging-writer" is limited to the environments staging: POST /api/v1/sync/resume concerns every environment`},
		{"writer-secret", "POST", "/api/v1/sync", 404, "does not follow a repository"},
		{adminToken, "POST", "/api/v1/sync/pause", 404, "does not follow a repository"},

		{"reader-secret", "GET", "/test/env/production", 200, ""},
		{"reader-secret", "POST", "/test/env/production", 403, `token "reader" is read-only: POST /test/env/production needs a token with scope write`},
		{"staging-reader-secret", "GET", "/test/env/development", 200, ""},
		{"staging-reader-secret", "GET", "/test/env/production", 403, `token "staging-reader" may not read environment "production": it is limited to staging, development`},
		{"staging-reader-secret", "POST", "/test/env/staging", 403, `token "staging-reader" is read-only`},
		{"staging-writer-secret", "POST", "/test/env/staging", 200, ""},
		{"staging-writer-secret", "GET", "/test/env/staging", 200, ""},
		{"staging-writer-secret", "POST", "/test/env/production", 403, `token "staging-writer" may not write environment "production": it is limited to staging`},
		{"staging-writer-secret", "GET", "/test/env/production", 403, `may not read environment "production"`},
		{"writer-secret", "POST", "/test/env/production", 200, ""},
		{adminToken, "POST", "/test/env/production", 200, ""},
	}
	for _, c := range cases {
		resp, body := send(t, c.method, ts.URL+c.path, "", "Authorization", "Api-Key "+c.secret)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s %s: %d %s, want %d", c.secret, c.method, c.path, resp.StatusCode, body, c.want)
			continue
		}
		if c.detail != "" && !strings.Contains(detail(t, resp, body), c.detail) {
			t.Errorf("%s %s %s: %s, want %s", c.secret, c.method, c.path, body, c.detail)
		}
	}
	// The handler sees the caller: its name and email (a commit's author).
	for secret, want := range map[string]string{adminToken: `{"email":"admin@gitflags.invalid","name":"admin"}`, "staging-writer-secret": `{"email":"sw@acme.example","name":"staging-writer"}`} {
		if _, body := send(t, "POST", ts.URL+"/test/env/staging", "", "Authorization", "Bearer "+secret); strings.TrimSpace(string(body)) != want {
			t.Errorf("caller of %s: %s, want %s", secret, body, want)
		}
	}
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (127.0.0.0/8 is all loopback on Linux).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	return &http.Client{Transport: tr}
}

func call(t *testing.T, c *http.Client, method, url, auth string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct{ Detail string }
	json.NewDecoder(resp.Body).Decode(&d)
	return resp, d.Detail
}

// TestAdminFailureLimit: after 10 wrong tokens from one address, every
// request from it gets 429 with Retry-After, even with a valid token, until
// an attempt is earned back; other addresses are not affected.
func TestAdminFailureLimit(t *testing.T) {
	clock := &manualClock{t: time.Unix(1_700_000_000, 0)}
	ts := authServer(t, tokens.Limits{Now: clock.Now})
	a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	defer a.CloseIdleConnections()
	defer b.CloseIdleConnections()
	status := ts.URL + "/api/v1/status"
	for range 20 { // no token is no attempt
		if resp, _ := call(t, a, "GET", status, ""); resp.StatusCode != 401 {
			t.Fatalf("no token: %d", resp.StatusCode)
		}
	}
	for i := range 10 {
		if resp, _ := call(t, a, "GET", status, "Token wrong"); resp.StatusCode != 401 {
			t.Fatalf("wrong token %d: %d, want 401", i, resp.StatusCode)
		}
	}
	for _, auth := range []string{"Token wrong", "Token " + adminToken} {
		resp, d := call(t, a, "GET", status, auth)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "6" || d != "too many failed admin token attempts from this address: retry in 6s" {
			t.Fatalf("after 10 failures, %s: %d Retry-After %q %q", auth, resp.StatusCode, resp.Header.Get("Retry-After"), d)
		}
	}
	if resp, d := call(t, b, "GET", status, "Token "+adminToken); resp.StatusCode != 200 {
		t.Fatalf("another address: %d %s", resp.StatusCode, d)
	}
	clock.Add(5 * time.Second)
	if resp, _ := call(t, a, "GET", status, "Token "+adminToken); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("5 s later: %d Retry-After %q, want 429 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clock.Add(time.Second)
	if resp, d := call(t, a, "GET", status, "Token "+adminToken); resp.StatusCode != 200 {
		t.Fatalf("6 s later: %d %s", resp.StatusCode, d)
	}
}

// TestAdminWriteLimit: writes are limited per token; reads are not, nor
// other tokens.
func TestAdminWriteLimit(t *testing.T) {
	clock := &manualClock{t: time.Unix(1_700_000_000, 0)}
	ts := authServer(t, tokens.Limits{WritesPerSecond: 0.5, WriteBurst: 3, Now: clock.Now})
	write := func(secret string) (*http.Response, []byte) {
		return send(t, "POST", ts.URL+"/test/env/staging", "", "Authorization", "Bearer "+secret)
	}
	for i := range 3 {
		if resp, body := write("writer-secret"); resp.StatusCode != 200 {
			t.Fatalf("write %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := write("writer-secret")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || detail(t, resp, body) != `token "writer" made too many writes: retry in 2s` {
		t.Fatalf("4th write: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := write("staging-writer-secret"); resp.StatusCode != 200 {
		t.Errorf("another token's write: %d %s", resp.StatusCode, body)
	}
	for range 10 {
		if resp, body := send(t, "GET", ts.URL+"/test/env/staging", "", "Authorization", "Bearer writer-secret"); resp.StatusCode != 200 {
			t.Fatalf("read of a write-limited token: %d %s", resp.StatusCode, body)
		}
	}
	clock.Add(2 * time.Second)
	if resp, body := write("writer-secret"); resp.StatusCode != 200 {
		t.Fatalf("2 s later: %d %s", resp.StatusCode, body)
	}
	if resp, _ := write("writer-secret"); resp.StatusCode != 429 {
		t.Fatalf("the earned-back write was not used: %d", resp.StatusCode)
	}
}

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5":         "127.0.0.1",
		"[::ffff:10.0.0.1]:1": "10.0.0.1",
		"[2001:db8::1]:5":     "2001:db8::/64",
		"[2001:db8::ff:2]:6":  "2001:db8::/64",
		"[2001:db8:0:1::]:6":  "2001:db8:0:1::/64",
		"[fe80::1%eth0]:1":    "fe80::/64",
		"not an address":      "not an address",
		"@":                   "@",
	} {
		if got := clientKey(addr); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", addr, got, want)
		}
	}
}
