package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// setStagingRateLimit writes api_rate_limit in staging through the admin API.
func (f *adminFixture) setStagingRateLimit(t *testing.T, token string, v int) {
	t.Helper()
	code, body := f.do(t, http.MethodPost, "/api/experiments/environments/"+stagingKey+"/update-flag-v1/", token,
		fmt.Appendf(nil, `{"feature": {"name": "api_rate_limit"}, "enabled": true, "value": {"type": "integer", "value": "%d"}}`, v), nil)
	if code != http.StatusNoContent {
		t.Fatalf("write: %d %s", code, body)
	}
}

type historyAnswer struct {
	Revision string
	Next     string
	Entries  []struct {
		Revision, Author, Message string
		AuthorEmail               string `json:"author_email"`
		Changes                   []struct {
			Path          string
			Before, After json.RawMessage
		}
	}
}

func TestHistory(t *testing.T) {
	f := newAdminFixture(t)
	for _, v := range []int{1, 2, 3} {
		f.setStagingRateLimit(t, "staging-writer-secret", v)
	}
	get := func(query, token string) (int, historyAnswer, string) {
		code, body := f.do(t, http.MethodGet, "/api/v1/history"+query, token, nil, nil)
		var h historyAnswer
		json.Unmarshal(body, &h)
		return code, h, string(body)
	}
	code, h, raw := get("?feature=api_rate_limit&limit=2", adminToken)
	if code != 200 || len(h.Entries) != 2 || h.Next == "" {
		t.Fatalf("history: %d %s", code, raw)
	}
	e := h.Entries[0]
	if e.Revision != f.git(t, "rev-parse", "HEAD") || e.Author != "staging-writer" || !strings.Contains(e.Message, "value 3 (was 2)") {
		t.Errorf("newest entry %+v", e)
	}
	if len(e.Changes) != 1 || e.Changes[0].Path != "environments/staging/features/api_rate_limit.json" ||
		!strings.Contains(string(e.Changes[0].Before), `"value":2`) || !strings.Contains(string(e.Changes[0].After), `"value":3`) {
		t.Errorf("changes %+v", e.Changes)
	}
	// The next page continues with the first write, then the template's
	// first commit.
	code, h, raw = get("?feature=api_rate_limit&limit=2&cursor="+h.Next, adminToken)
	if code != 200 || len(h.Entries) != 2 || !strings.Contains(h.Entries[0].Message, "value 1 (was 5000)") || h.Next != "" {
		t.Fatalf("second page: %d %s", code, raw)
	}
	// Filters combine; a token limited to environments must name one.
	if code, h, raw = get("?feature=api_rate_limit&environment=production", adminToken); code != 200 || len(h.Entries) != 1 {
		t.Errorf("production history of api_rate_limit: %d %s", code, raw)
	}
	for _, c := range []struct {
		query, token string
		code         int
		want         string
	}{
		{"?feature=api_rate_limit", "staging-reader-secret", 403, "environment="},
		{"?environment=production", "staging-reader-secret", 403, "production"},
		{"?environment=staging", "staging-reader-secret", 200, ""},
		{"?feature=../x", adminToken, 400, "feature"},
		{"?limit=abc", adminToken, 400, "limit"},
		{"?limit=100000", adminToken, 400, "limit"},
		{"?cursor=nope", adminToken, 400, "cursor"},
		{"?colour=red", adminToken, 400, "colour"},
		{"?feature=%zz", adminToken, 400, "feature"},
		{"", "", 401, ""},
	} {
		code, _, raw := get(c.query, c.token)
		if code != c.code || !strings.Contains(raw, c.want) {
			t.Errorf("history%s with %s: %d %s, want %d with %q", c.query, c.token, code, raw, c.code, c.want)
		}
	}
}

func TestProposals(t *testing.T) {
	f := newAdminFixture(t)
	// One proposal by review (production), one asked for.
	code, body := f.do(t, http.MethodPost, "/api/experiments/environments/prd_Vn4sT8wQ1zLk6PjH9rXc/update-flag-v1/", adminToken,
		[]byte(`{"feature": {"name": "maintenance_mode"}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`), nil)
	if code != http.StatusAccepted {
		t.Fatalf("proposal: %d %s", code, body)
	}
	var made struct{ Branch, Revision string }
	json.Unmarshal(body, &made)
	// A hand-made proposal branch that does not validate.
	f.git(t, "checkout", "-q", "-b", "gitflags/broken")
	f.git(t, "rm", "-q", "segments/beta_users.json")
	f.git(t, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "remove a segment still used")
	f.git(t, "checkout", "-q", "main")

	// A token limited to staging and development sees neither (production,
	// and a segment every environment shares).
	code, body = f.do(t, http.MethodGet, "/api/v1/proposals", "staging-reader-secret", nil, nil)
	if code != 200 || strings.Contains(string(body), "gitflags/") {
		t.Errorf("proposals for a staging token: %d %s", code, body)
	}
	code, body = f.do(t, http.MethodGet, "/api/v1/proposals", adminToken, nil, nil)
	var list struct {
		BaseBranch string `json:"base_branch"`
		Proposals  []struct {
			Branch, Revision string
			Files            []string
			Valid            bool
			Problems         []struct{ File, Message string }
			Commits          []struct{ Author, Message string }
		}
	}
	if err := json.Unmarshal(body, &list); err != nil || code != 200 || len(list.Proposals) != 2 || list.BaseBranch != "main" {
		t.Fatalf("proposals: %d %s", code, body)
	}
	broken, ours := list.Proposals[0], list.Proposals[1]
	if broken.Branch != "gitflags/broken" || broken.Valid || len(broken.Problems) == 0 || !strings.Contains(broken.Problems[0].Message, "beta_users") {
		t.Errorf("broken proposal %+v", broken)
	}
	if ours.Branch != made.Branch || ours.Revision != made.Revision || !ours.Valid ||
		strings.Join(ours.Files, ",") != "environments/production/features/maintenance_mode.json" ||
		len(ours.Commits) != 1 || ours.Commits[0].Author != "admin" || !strings.Contains(ours.Commits[0].Message, "production: maintenance_mode on") {
		t.Errorf("our proposal %+v", ours)
	}
	// Once merged, a proposal is no longer open.
	f.git(t, "-c", "user.name=T", "-c", "user.email=t@example.com", "merge", "-q", "--no-edit", made.Branch)
	f.waitServed(t, f.git(t, "rev-parse", "HEAD"))
	code, body = f.do(t, http.MethodGet, "/api/v1/proposals", adminToken, nil, nil)
	if code != 200 || strings.Contains(string(body), made.Branch) || !strings.Contains(string(body), "gitflags/broken") {
		t.Errorf("after the merge: %d %s", code, body)
	}
	// A proposal squash-merged (a new commit with its change, not its
	// commits) is no longer open either.
	code, body = f.do(t, http.MethodPost, "/api/experiments/environments/prd_Vn4sT8wQ1zLk6PjH9rXc/update-flag-v1/", adminToken,
		[]byte(`{"feature": {"name": "api_rate_limit"}, "enabled": true, "value": {"type": "integer", "value": "777"}}`), nil)
	var squashed struct{ Branch string }
	if json.Unmarshal(body, &squashed); code != http.StatusAccepted || squashed.Branch == "" {
		t.Fatalf("second proposal: %d %s", code, body)
	}
	code, body = f.do(t, http.MethodGet, "/api/v1/proposals", adminToken, nil, nil)
	if code != 200 || !strings.Contains(string(body), squashed.Branch) {
		t.Fatalf("the second proposal is not listed: %d %s", code, body)
	}
	f.git(t, "-c", "user.name=T", "-c", "user.email=t@example.com", "merge", "-q", "--squash", squashed.Branch)
	f.git(t, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "squashed")
	f.waitServed(t, f.git(t, "rev-parse", "HEAD"))
	code, body = f.do(t, http.MethodGet, "/api/v1/proposals", adminToken, nil, nil)
	if code != 200 || strings.Contains(string(body), squashed.Branch) || !strings.Contains(string(body), "gitflags/broken") {
		t.Errorf("after the squash merge: %d %s", code, body)
	}
	if code, _ := f.do(t, http.MethodGet, "/api/v1/proposals", "", nil, nil); code != 401 {
		t.Errorf("proposals without a token: %d", code)
	}
}
