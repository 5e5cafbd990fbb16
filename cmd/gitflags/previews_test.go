package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestPreviewBranches: with --preview-branches, a server key allowed
// previews gets a branch's flags over the SDK API and OFREP (X-Gitflags-Ref),
// the branch's new commits included; everyone else is refused with a
// reason; a preview stores no traits; GET /api/v1/proposals/{branch} says
// what the branch changes and whether it validates.
func TestPreviewBranches(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flags")
	if code, out, errOut := runCmd(t, "init", dir); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	const previewKey, plainKey = "ser.preview-key-0123456789", "ser.plain-key-0123456789"
	hash := func(k string) string { s := sha256.Sum256([]byte(k)); return hex.EncodeToString(s[:]) }
	envFile := filepath.Join(dir, "environments", "staging", "environment.json")
	var env map[string]any
	readJSON(t, envFile, &env)
	env["server_keys"] = []map[string]any{
		{"name": "ci previews", "sha256": hash(previewKey), "previews": true},
		{"name": "backend", "sha256": hash(plainKey)},
	}
	writeJSON(t, envFile, env)
	git(t, dir, "commit", "-qam", "staging: server keys")

	limit := filepath.Join(dir, "environments", "staging", "features", "api_rate_limit.json")
	setLimit := func(v int) {
		writeJSON(t, limit, map[string]any{"$schema": "../../../schemas/environment-feature.schema.json", "value": v})
	}
	git(t, dir, "checkout", "-qb", "preview/new-limit")
	setLimit(1234)
	git(t, dir, "commit", "-qam", "staging: api_rate_limit 1234")
	git(t, dir, "checkout", "-qb", "preview/broken", "main")
	if err := os.WriteFile(filepath.Join(dir, "features", "broken.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-qm", "broken")
	git(t, dir, "checkout", "-qb", "other/x", "main")
	git(t, dir, "checkout", "-q", "main")

	t.Setenv("GITFLAGS_ADMIN_TOKEN", "preview-admin-token")
	prodReader, prodEntry := createToken(t, "--name", "prod-reader", "--email", "p@acme.example", "--environments", "production")
	stagingReader, stagingEntry := createToken(t, "--name", "staging-reader", "--email", "s@acme.example", "--environments", "staging")
	tokensFile := filepath.Join(t.TempDir(), "tokens.json")
	writeTokens(t, tokensFile, prodEntry, stagingEntry)
	base := startServe(t, "--repo", dir, "--data", filepath.Join(t.TempDir(), "data"), "--preview-branches", "preview/*", "--tokens", tokensFile)

	call := func(method, path, key, branch, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if strings.HasPrefix(path, "/ofrep/") {
			req.Header.Set("Authorization", "Bearer "+key)
		} else if strings.HasPrefix(path, "/api/v1/proposals") {
			req.Header.Set("Authorization", "Bearer "+key)
		} else {
			req.Header.Set("X-Environment-Key", key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if branch != "" {
			req.Header.Set("X-Gitflags-Ref", branch)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	limitOf := func(key, branch string) (any, http.Header) {
		t.Helper()
		code, h, body := call("GET", "/api/v1/flags/?feature=api_rate_limit", key, branch, "")
		if code != 200 {
			t.Fatalf("flags as %s on %q: %d %s", key, branch, code, body)
		}
		var f struct {
			Value any `json:"feature_state_value"`
		}
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return f.Value, h
	}

	if v, h := limitOf(previewKey, ""); v != float64(5000) || h.Get("X-Gitflags-Ref") != "" {
		t.Errorf("served: api_rate_limit %v, preview header %q", v, h.Get("X-Gitflags-Ref"))
	}
	v, h := limitOf(previewKey, "preview/new-limit")
	if v != float64(1234) || h.Get("X-Gitflags-Ref") != "preview/new-limit" || h.Get("X-Gitflags-Revision") != revParse(t, dir, "preview/new-limit") {
		t.Errorf("preview: api_rate_limit %v, headers %v", v, h)
	}
	code, _, body := call("POST", "/ofrep/v1/evaluate/flags/api_rate_limit", previewKey, "preview/new-limit", `{"context":{}}`)
	if code != 200 || !strings.Contains(body, `"value":1234`) {
		t.Errorf("OFREP preview: %d %s", code, body)
	}

	// The branch moves: the next request answers from its new head.
	git(t, dir, "checkout", "-q", "preview/new-limit")
	setLimit(4321)
	git(t, dir, "commit", "-qam", "staging: api_rate_limit 4321")
	git(t, dir, "checkout", "-q", "main")
	if v, _ := limitOf(previewKey, "preview/new-limit"); v != float64(4321) {
		t.Errorf("after the branch moved: api_rate_limit %v, want 4321", v)
	}

	// A websocket stream of the branch: its flags, then each new head's
	// changes; a key not allowed previews is refused at the upgrade.
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/stream"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Environment-Key": {plainKey}, "X-Gitflags-Ref": {"preview/new-limit"}}}); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("a stream of the branch with a key not allowed previews: %v %v", resp, err)
	}
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Environment-Key": {previewKey}, "X-Gitflags-Ref": {"preview/new-limit"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","version":1}`)); err != nil {
		t.Fatal(err)
	}
	type flag struct {
		Value any
	}
	var msg struct {
		Type, Revision string
		Flags, Changed map[string]flag
	}
	read := func() {
		t.Helper()
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("stream of the branch: %v", err)
			}
			msg.Flags, msg.Changed = nil, nil
			if err := json.Unmarshal(data, &msg); err != nil {
				t.Fatal(err)
			}
			if msg.Type != "heartbeat" {
				return
			}
		}
	}
	if read(); msg.Type != "flags" || msg.Flags["api_rate_limit"].Value != float64(4321) {
		t.Fatalf("the branch's flags: %+v", msg)
	}
	git(t, dir, "checkout", "-q", "preview/new-limit")
	setLimit(999)
	git(t, dir, "commit", "-qam", "staging: api_rate_limit 999")
	git(t, dir, "checkout", "-q", "main")
	if read(); msg.Type != "changes" || msg.Changed["api_rate_limit"].Value != float64(999) || msg.Revision != revParse(t, dir, "preview/new-limit") || len(msg.Changed) != 1 {
		t.Fatalf("the branch's new head: %+v", msg)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// Refusals, each with its reason.
	clientKey := env["client_key"].(string)
	for _, c := range []struct {
		key, branch string
		code        int
		want        string
	}{
		{clientKey, "preview/new-limit", 403, "server-side key"},
		{plainKey, "preview/new-limit", 403, `\"previews\": true`},
		{previewKey, "other/x", 403, "not a preview branch"},
		{previewKey, "preview/nope", 404, "no such branch"},
		{previewKey, "preview/broken", 409, "features/broken.json"},
	} {
		code, _, body := call("GET", "/api/v1/flags/", c.key, c.branch, "")
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s on %s: %d %s, want %d naming %q", c.key, c.branch, code, body, c.code, c.want)
		}
	}

	// A preview uses sent traits and stores none.
	code, _, body = call("POST", "/api/v1/identities/", previewKey, "preview/new-limit", `{"identifier":"u-preview","traits":[{"trait_key":"plan","trait_value":"pro"}]}`)
	if code != 200 || !strings.Contains(body, `"trait_key":"plan"`) {
		t.Fatalf("identities preview: %d %s", code, body)
	}
	code, _, body = call("GET", "/api/v1/identities/?identifier=u-preview", previewKey, "", "")
	if code != 200 || strings.Contains(body, "plan") {
		t.Errorf("the preview stored traits: %d %s", code, body)
	}

	// The branch's semantic diff against the served revision.
	code, _, body = call("GET", "/api/v1/proposals/preview/new-limit", "preview-admin-token", "", "")
	var p struct {
		Branch, Revision string
		Valid            bool
		Diff             struct {
			Changes []struct{ Environment, Message string }
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &p) != nil || !p.Valid || p.Branch != "preview/new-limit" || len(p.Diff.Changes) != 1 ||
		p.Diff.Changes[0].Environment != "staging" || !strings.Contains(p.Diff.Changes[0].Message, "api_rate_limit") {
		t.Errorf("proposal diff: %d %s", code, body)
	}
	code, _, body = call("GET", "/api/v1/proposals/preview/broken", "preview-admin-token", "", "")
	if code != 200 || !strings.Contains(body, `"valid":false`) || !strings.Contains(body, "features/broken.json") {
		t.Errorf("proposal of an invalid branch: %d %s", code, body)
	}
	if code, _, body = call("GET", "/api/v1/proposals/other/x", "preview-admin-token", "", ""); code != 403 {
		t.Errorf("proposal of a branch that is not previewable: %d %s", code, body)
	}
	// A token limited to environments sees a branch that changes only those.
	if code, _, body = call("GET", "/api/v1/proposals/preview/new-limit", stagingReader, "", ""); code != 200 {
		t.Errorf("proposal (staging only) with a staging token: %d %s", code, body)
	}
	if code, _, body = call("GET", "/api/v1/proposals/preview/new-limit", prodReader, "", ""); code != 403 || !strings.Contains(body, "prod-reader") {
		t.Errorf("proposal (staging only) with a production token: %d %s", code, body)
	}
	if code, _, body = call("GET", "/api/v1/proposals/preview/new-limit", "not-a-token", "", ""); code != 401 {
		t.Errorf("proposal with a wrong token: %d %s", code, body)
	}
	if code, _, body = call("GET", "/api/v1/proposals/preview/nope", "preview-admin-token", "", ""); code != 404 {
		t.Errorf("proposal of an unknown branch: %d %s", code, body)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func revParse(t *testing.T, dir, rev string) string {
	t.Helper()
	cmd := exec.Command("git", "rev-parse", rev)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git rev-parse %s: %v", rev, err)
	}
	return strings.TrimSpace(string(out))
}
