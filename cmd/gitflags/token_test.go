package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/tokens"
)

// createToken runs `gitflags token create args...` and returns the token
// and the entry it printed.
func createToken(t *testing.T, args ...string) (string, json.RawMessage) {
	t.Helper()
	code, out, errOut := runCmd(t, append([]string{"token", "create"}, args...)...)
	m := regexp.MustCompile(`^admin token \(shown once; store it as a secret\): (gfa_[0-9a-f]{64})\nadd to "tokens" in the tokens file \(gitflags serve --tokens FILE\):\n  (\{.*\})\n$`).FindStringSubmatch(out)
	if code != 0 || m == nil || errOut != "" {
		t.Fatalf("token create %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return m[1], json.RawMessage(m[2])
}

// writeTokens writes a tokens file of entries, renamed into place.
func writeTokens(t *testing.T, path string, entries ...json.RawMessage) {
	t.Helper()
	data, err := json.MarshalIndent(map[string]any{"tokens": entries}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// adminStatus sends method path with Authorization: auth and returns the status.
func adminStatus(t *testing.T, method, url, auth string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTokenCreateEntry(t *testing.T) {
	secret, entry := createToken(t, "--name", "CI bot & co", "--email", "ci@acme.example", "--scope", "write", "--environments", "staging, development")
	var e tokens.Entry
	if err := json.Unmarshal(entry, &e); err != nil {
		t.Fatal(err)
	}
	want := tokens.Entry{Name: "CI bot & co", Email: "ci@acme.example", SHA256: tokens.Hash(secret), Scope: "write", Environments: []string{"staging", "development"}}
	if e.Name != want.Name || e.Email != want.Email || e.SHA256 != want.SHA256 || e.Scope != want.Scope || strings.Join(e.Environments, ",") != "staging,development" {
		t.Errorf("entry %s, want %+v", entry, want)
	}
	if strings.Contains(string(entry), secret) || strings.Contains(string(entry), `\u0026`) {
		t.Errorf("entry %s holds the token or HTML escapes", entry)
	}
	other, _ := createToken(t, "--name", "x", "--email", "x@acme.example")
	if other == secret {
		t.Error("two tokens are the same")
	}
	if _, entry := createToken(t, "--name", "x", "--email", "x@acme.example"); !strings.Contains(string(entry), `"scope":"read"`) || strings.Contains(string(entry), "environments") {
		t.Errorf("default entry: %s, want scope read and every environment", entry)
	}
}

func TestTokenCreateFlags(t *testing.T) {
	ok := []string{"--name", "bot", "--email", "bot@acme.example"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "usage: gitflags token create"},
		{[]string{"delete"}, "usage: gitflags token create"},
		{[]string{"create", "--email", "bot@acme.example"}, "--name is empty"},
		{[]string{"create", "--name", "bot"}, "--email is empty"},
		{[]string{"create", "--name", "bot", "--email", "bot"}, `--email "bot" is not a bare email address`},
		{[]string{"create", "--name", "bot", "--email", "Bot <bot@acme.example>"}, `--email "Bot <bot@acme.example>" is not a bare email address`},
		{[]string{"create", "--name", " bot", "--email", "bot@acme.example"}, `--name " bot" starts or ends with a space`},
		{[]string{"create", "--name", strings.Repeat("n", 101), "--email", "bot@acme.example"}, "--name has 101 characters"},
		{append([]string{"create", "--scope", "admin"}, ok...), `--scope "admin" is not a scope: use "read" or "write"`},
		{append([]string{"create", "--environments", "staging,,prod"}, ok...), `--environments: "" is not an environment key`},
		{append([]string{"create", "--environments", "../prod"}, ok...), `--environments: "../prod" is not an environment key`},
		{append([]string{"create", "--environments", "staging,staging"}, ok...), `--environments: "staging" is listed twice`},
		{append([]string{"create", "extra"}, ok...), "token create takes no arguments"},
		{[]string{"create", "--unknown"}, "flag provided but not defined: -unknown"},
	} {
		code, out, errOut := runCmd(t, append([]string{"token"}, c.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("token %v: exit %d %q\n%s\nwant exit 2 and %s", c.args, code, out, errOut, c.want)
		}
	}
	if code, _, errOut := runCmd(t, "help", "token"); code != 0 || !strings.Contains(errOut, "Usage: gitflags token create --name NAME") {
		t.Errorf("help token: %d %s", code, errOut)
	}
}

// TestServeTokens: tokens made by `token create` work with serve --tokens,
// in every Authorization scheme, within their scope; the file is re-read
// when it changes; GITFLAGS_ADMIN_TOKEN works beside it.
func TestServeTokens(t *testing.T) {
	writer, writerEntry := createToken(t, "--name", "on-call", "--email", "oncall@acme.example", "--scope", "write")
	reader, readerEntry := createToken(t, "--name", "dashboard", "--email", "dash@acme.example")
	path := filepath.Join(t.TempDir(), "tokens.json")
	writeTokens(t, path, writerEntry, readerEntry)
	t.Setenv("GITFLAGS_ADMIN_TOKEN", "env-admin-token")
	dir := filepath.Join(t.TempDir(), "flags")
	if code, out, errOut := runCmd(t, "init", dir); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	srv := startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--repo", dir, "--data", t.TempDir(), "--tokens", path})
	base := srv.base
	for _, scheme := range []string{"Api-Key", "Token", "Bearer", "api-key"} {
		for _, secret := range []string{writer, reader, "env-admin-token"} {
			if code := adminStatus(t, "GET", base+"/api/v1/status", scheme+" "+secret); code != 200 {
				t.Errorf("status with %s %.8s…: %d", scheme, secret, code)
			}
		}
	}
	for _, c := range []struct {
		auth string
		want int
	}{
		{"Api-Key " + reader, 403},
		{"Api-Key " + writer, 202},
		{"Token env-admin-token", 202},
		{"Token " + tokens.Hash(writer), 401},
		{"", 401},
	} {
		if code := adminStatus(t, "POST", base+"/api/v1/sync", c.auth); code != c.want {
			t.Errorf("sync with %q: %d, want %d", c.auth, code, c.want)
		}
	}

	// A new version of the file: the new token is accepted, the removed one refused.
	fresh, freshEntry := createToken(t, "--name", "fresh", "--email", "fresh@acme.example")
	writeTokens(t, path, writerEntry, freshEntry)
	waitFor(t, "the new token accepted", func() bool { return adminStatus(t, "GET", base+"/api/v1/status", "Bearer "+fresh) == 200 })
	if code := adminStatus(t, "GET", base+"/api/v1/status", "Bearer "+reader); code != 401 {
		t.Errorf("removed token: %d, want 401", code)
	}
	// An invalid version keeps the last valid one.
	if err := os.WriteFile(path, []byte(`{"tokens": [{"name": "broken"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the invalid version logged", func() bool {
		adminStatus(t, "GET", base+"/api/v1/status", "Bearer "+fresh)
		return strings.Contains(srv.stderr.String(), "is invalid")
	})
	if code := adminStatus(t, "GET", base+"/api/v1/status", "Bearer "+fresh); code != 200 {
		t.Errorf("after an invalid version: %d, want 200", code)
	}
}

// TestServeTokensInvalidAtStart: an invalid or missing tokens file stops the
// server at start, naming the file and every problem.
func TestServeTokensInvalidAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	os.WriteFile(path, []byte(`{"tokens": [{"name": "bot", "email": "bot", "sha256": "00", "scope": "all"}]}`), 0o600)
	code, out, errOut := runCmd(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--tokens", path)
	for _, want := range []string{path + `: /tokens/0/email: email "bot" is not a bare email address`, path + `: /tokens/0/sha256: sha256 "00" is not a SHA-256 hash`, path + `: /tokens/0/scope: scope "all" is not a scope`} {
		if code != 1 || !strings.Contains(errOut, want) || strings.Contains(out, "serving") {
			t.Errorf("exit %d\n%s%s\nwant %s", code, out, errOut, want)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.json")
	if code, _, errOut := runCmd(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--tokens", missing); code != 1 || !strings.Contains(errOut, "tokens file: stat "+missing) {
		t.Errorf("missing file: exit %d %s", code, errOut)
	}
}
