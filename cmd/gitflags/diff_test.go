package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// editJSON rewrites the JSON document at path with fn.
func editJSON(t *testing.T, path string, fn func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	fn(doc)
	out, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// diffRepo makes a flag repository with `gitflags init` and a branch
// "change" that turns new_checkout's beta_users override off in
// production.
func diffRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "flags")
	if code, out, errOut := runCmd(t, "init", dir); code != 0 {
		t.Fatalf("init: %d %s%s", code, out, errOut)
	}
	git(t, dir, "checkout", "-q", "-b", "change")
	editJSON(t, filepath.Join(dir, "environments/production/features/new_checkout.json"), func(d map[string]any) {
		d["segment_overrides"].([]any)[0].(map[string]any)["enabled"] = false
	})
	git(t, dir, "commit", "-qam", "beta users off")
	return dir
}

// TestDiffCommand: formats, exit codes, usage errors.
func TestDiffCommand(t *testing.T) {
	dir := diffRepo(t)
	want := "! `new_checkout` turned off for segment `beta_users` (priority 1)  [production]"
	code, out, errOut := runCmd(t, "diff", "--repo", dir, "main", "change")
	if code != 0 || !strings.Contains(out, want) || !strings.HasPrefix(out, "gitflags diff main (") {
		t.Fatalf("diff: exit %d\n%s%s", code, out, errOut)
	}
	if code, out2, _ := runCmd(t, "diff", "--repo", dir, "main...change"); code != 0 || !strings.Contains(out2, want) || !strings.HasPrefix(out2, "gitflags diff main (merge base ") {
		t.Errorf("main...change: exit %d\n%s", code, out2)
	}
	if code, out2, _ := runCmd(t, "diff", "--repo", dir, "main..change"); code != 0 || out2 != out {
		t.Errorf("main..change: exit %d\n%s", code, out2)
	}
	if code, md, _ := runCmd(t, "diff", "--repo", dir, "--format", "markdown", "main", "change"); code != 0 || !strings.Contains(md, "#### production — 1 risky\n\n- ⚠️ `new_checkout` turned off for segment `beta_users` (priority 1) _(production)_\n") {
		t.Errorf("markdown: exit %d\n%s", code, md)
	}
	code, js, _ := runCmd(t, "diff", "--repo", dir, "--format", "json", "main", "change")
	var rep struct {
		Head    struct{ Valid bool }
		Changes []struct {
			Environment, Kind, Message string
			Risks                      []string
		}
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil || code != 0 || len(rep.Changes) != 1 || rep.Changes[0].Environment != "production" || rep.Changes[0].Kind != "segment_override_changed" {
		t.Errorf("json: exit %d %v\n%s", code, err, js)
	}
	// Without HEAD: the work tree of --repo, uncommitted edits included.
	editJSON(t, filepath.Join(dir, "environments/staging/features/dark_mode.json"), func(d map[string]any) { d["enabled"] = true })
	if code, out, _ := runCmd(t, "diff", "--repo", dir, "change"); code != 0 || !strings.Contains(out, "  `dark_mode` turned on\n") || !strings.Contains(out, "-> "+dir+" (directory)") {
		t.Errorf("change vs work tree: exit %d\n%s", code, out)
	}

	// --identities: counts and examples.
	ids := filepath.Join(t.TempDir(), "ids.jsonl")
	os.WriteFile(ids, []byte(`{"identifier": "alice@example.com"}`+"\n"+`{"identifier": "zed", "traits": {"beta_tester": "false"}}`+"\n"), 0o644)
	if code, out, errOut := runCmd(t, "diff", "--repo", dir, "--identities", ids, "main", "change"); code != 0 || !strings.Contains(out, "    `new_checkout`: 1 of 2 change (50%), e.g. alice@example.com: on, value \"express\" -> off, value \"express\"\n") {
		t.Errorf("identities: exit %d\n%s%s", code, out, errOut)
	}

	// A side that fails validation: the report, exit 1.
	os.WriteFile(filepath.Join(dir, "features/dark_mode.json"), []byte("{"), 0o644)
	code, out, _ = runCmd(t, "diff", "--repo", dir, "main")
	if code != 1 || !strings.Contains(out, "HEAD fails validation (1 problem):") || !strings.Contains(out, "features/dark_mode.json: BASE's version on both sides") {
		t.Errorf("invalid HEAD: exit %d\n%s", code, out)
	}

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"main", "nope"}, 2, `HEAD: resolve "nope": unknown revision`},
		{[]string{"nope", "main"}, 2, `BASE: resolve "nope": unknown revision`},
		{[]string{}, 2, "diff takes BASE and optionally HEAD, got 0 arguments"},
		{[]string{"a", "b", "c"}, 2, "got 3 arguments"},
		{[]string{"--format", "yaml", "main"}, 2, "--format must be text, markdown or json"},
		{[]string{"--identities", ids, "--sample-store", "5", "main"}, 2, "exclude each other"},
		{[]string{"--identities", "/nonexistent.jsonl", "main", "change"}, 2, "--identities: open /nonexistent.jsonl"},
		{[]string{"--sample-store", "5", "--data", t.TempDir(), "main", "change"}, 2, "--sample-store: identity store: stat"},
		{[]string{"...change"}, 2, "BASE...HEAD needs both revisions"},
	} {
		code, out, errOut := runCmd(t, append([]string{"diff", "--repo", dir}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.msg) || out != "" {
			t.Errorf("diff %v: exit %d, want %d with %q\n%s%s", c.args, code, c.code, c.msg, out, errOut)
		}
	}
	// Unrelated histories (other: change's tree in a commit of its own): a
	// two-sided diff compares the trees; BASE...HEAD says there is no
	// common ancestor.
	git(t, dir, "checkout", "-q", "-f", "--orphan", "other")
	git(t, dir, "commit", "-qm", "unrelated")
	if code, _, errOut := runCmd(t, "diff", "--repo", dir, "main...other"); code != 2 || !strings.Contains(errOut, "no common ancestor: the two histories are unrelated; compare the two trees with 'gitflags diff main other'") {
		t.Errorf("unrelated ...: exit %d %s", code, errOut)
	}
	if code, out, errOut := runCmd(t, "diff", "--repo", dir, "main", "other"); code != 0 || !strings.Contains(out, want) {
		t.Errorf("unrelated: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "diff", "--repo", t.TempDir(), "main", "HEAD"); code != 2 || !strings.Contains(errOut, "not a git repository") {
		t.Errorf("no repository: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "diff", t.TempDir(), dir); code != 2 || !strings.Contains(errOut, "not a flag repository: it has no gitflags.json at its root (create one with 'gitflags init DIR')") {
		t.Errorf("not a flag repository: exit %d %s", code, errOut)
	}
}

// TestDiffHelp: the help says what the command takes and its exit codes.
func TestDiffHelp(t *testing.T) {
	_, _, errOut := runCmd(t, "diff", "--help")
	for _, s := range []string{"Usage: gitflags diff [--repo DIR]", "BASE...HEAD", "--identities", "--sample-store", "Exit status: 0 compared, both sides valid; 1"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("help lacks %q:\n%s", s, errOut)
		}
	}
	if _, out, _ := runCmd(t, "help"); !strings.Contains(out, "  diff      say what a change") {
		t.Errorf("help:\n%s", out)
	}
}

// fakeAPI is a loopback HTTP server standing in for the GitHub REST API's
// issue comments, or GitLab's merge request notes: it keeps the comments
// and records every request.
type fakeAPI struct {
	mu       sync.Mutex
	gitlab   bool
	comments []map[string]any // id, body (and system for GitLab)
	nextID   int
	requests []string // "METHOD path"
	token    string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	auth := r.Header.Get("Authorization") == "Bearer "+f.token
	list, one := "/repos/acme/flags/issues/7/comments", "/repos/acme/flags/issues/comments/"
	if f.gitlab {
		auth = r.Header.Get("PRIVATE-TOKEN") == f.token
		list, one = "/api/v4/projects/42/merge_requests/7/notes", "/api/v4/projects/42/merge_requests/7/notes/"
	}
	if !auth {
		http.Error(w, `{"message": "Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	body := func() string {
		var b struct{ Body *string }
		data, _ := io.ReadAll(r.Body)
		if json.Unmarshal(data, &b) != nil || b.Body == nil {
			return ""
		}
		return *b.Body
	}
	switch {
	case r.URL.Path == list && r.Method == http.MethodGet:
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if per <= 0 || per > 100 || page <= 0 {
			http.Error(w, "bad paging", http.StatusBadRequest)
			return
		}
		lo, hi := min(len(f.comments), (page-1)*per), min(len(f.comments), page*per)
		json.NewEncoder(w).Encode(f.comments[lo:hi])
	case r.URL.Path == list && r.Method == http.MethodPost:
		b := body()
		if b == "" {
			http.Error(w, "no body", http.StatusUnprocessableEntity)
			return
		}
		f.nextID++
		c := map[string]any{"id": f.nextID, "body": b, "system": false}
		f.comments = append(f.comments, c)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(c)
	case strings.HasPrefix(r.URL.Path, one) && (r.Method == http.MethodPatch && !f.gitlab || r.Method == http.MethodPut && f.gitlab):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, one))
		i := slices.IndexFunc(f.comments, func(c map[string]any) bool { return c["id"] == id })
		b := body()
		if i < 0 || b == "" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		f.comments[i]["body"] = b
		json.NewEncoder(w).Encode(f.comments[i])
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

// marked returns copies of the comments holding the diff marker.
func (f *fakeAPI) marked() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, c := range f.comments {
		if strings.HasPrefix(c["body"].(string), "<!-- gitflags-diff -->") {
			out = append(out, maps.Clone(c))
		}
	}
	return out
}

// count returns the number of comments.
func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.comments)
}

// setToken changes the token the server accepts.
func (f *fakeAPI) setToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = token
}

// takeRequests returns and forgets the requests made so far.
func (f *fakeAPI) takeRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

// TestCIScript runs what the template's GitHub workflow and GitLab job run
// (.gitflags/ci.sh: gitflags validate, gitflags diff, the comment), with the
// built binary, in a clone of a repository made by `gitflags init`, on a
// real branch pushed to a real remote, against a loopback server standing
// in for the GitHub and GitLab APIs: one comment, created once and then
// updated in place on every push.
func TestCIScript(t *testing.T) {
	for _, tool := range []string{"git", "sh", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed by .gitflags/ci.sh: %v", tool, err)
		}
	}
	bin := buildBinary(t)
	binDir := filepath.Join(t.TempDir(), "bin")
	os.MkdirAll(binDir, 0o755)
	if err := os.Rename(bin, filepath.Join(binDir, "gitflags")); err != nil {
		t.Fatal(err)
	}

	// The workflows run the script and install a pinned version.
	workflow, err := os.ReadFile(filepath.Join("..", "..", "flags-repo-template", ".github", "workflows", "gitflags.yml"))
	if err != nil {
		t.Fatal(err)
	}
	gitlab, err := os.ReadFile(filepath.Join("..", "..", "flags-repo-template", ".gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	pinned := regexp.MustCompile(`go install github\.com/gitflags/gitflags/cmd/gitflags@(v\d+\.\d+\.\d+)\n`)
	pins := map[string]bool{}
	for name, data := range map[string]string{"gitflags.yml": string(workflow), ".gitlab-ci.yml": string(gitlab)} {
		m := pinned.FindStringSubmatch(data)
		if !strings.Contains(data, "sh .gitflags/ci.sh\n") || m == nil {
			t.Errorf("%s does not install a pinned gitflags and run sh .gitflags/ci.sh:\n%s", name, data)
			continue
		}
		pins[m[1]] = true
	}
	// Both pin the latest release the README names.
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var latest string
	if m := regexp.MustCompile("\nLatest release: `(v\\d+\\.\\d+\\.\\d+)`\\.\n").FindSubmatch(readme); m != nil {
		latest = string(m[1])
	}
	if latest == "" || len(pins) != 1 || !pins[latest] {
		t.Errorf("the CI files pin %v; the README's latest release is %q: they must be the same", slices.Sorted(maps.Keys(pins)), latest)
	}
	if !strings.Contains(string(workflow), "fetch-depth: 0") || !strings.Contains(string(workflow), "pull-requests: write") || !strings.Contains(string(gitlab), `GIT_DEPTH: "0"`) {
		t.Error("the workflows must fetch the whole history and may write comments")
	}
	goMod, _ := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if !strings.HasPrefix(string(goMod), "module github.com/gitflags/gitflags\n") {
		t.Error("the workflows install github.com/gitflags/gitflags/cmd/gitflags: the module path changed")
	}

	for _, platform := range []string{"github", "gitlab"} {
		t.Run(platform, func(t *testing.T) {
			// origin: a repository made by gitflags init; work: its clone
			// with branch change pushed.
			root := t.TempDir()
			src := filepath.Join(root, "src")
			if code, out, errOut := runCmd(t, "init", src); code != 0 {
				t.Fatalf("init: %s%s", out, errOut)
			}
			origin := filepath.Join(root, "origin.git")
			git(t, root, "clone", "-q", "--bare", src, origin)
			work := filepath.Join(root, "work")
			git(t, root, "clone", "-q", origin, work)
			for _, f := range []string{".gitflags/ci.sh", ".github/workflows/gitflags.yml", ".gitlab-ci.yml", "CODEOWNERS"} {
				if _, err := os.Stat(filepath.Join(work, f)); err != nil {
					t.Fatalf("gitflags init did not make %s", f)
				}
			}
			git(t, work, "checkout", "-q", "-b", "change")
			push := func(msg string, edit func()) {
				edit()
				git(t, work, "commit", "-qam", msg)
				git(t, work, "push", "-q", "origin", "change")
				if platform == "github" {
					// What actions/checkout checks out for a pull request:
					// refs/pull/7/merge, the merge of the branch into the
					// base.
					git(t, work, "checkout", "-q", "--detach", "origin/main")
					git(t, work, "merge", "-q", "--no-ff", "-m", "Merge change into main", "change")
					git(t, work, "update-ref", "refs/pull/7/merge", "HEAD")
					git(t, work, "checkout", "-q", "change")
				}
			}
			api := &fakeAPI{gitlab: platform == "gitlab", token: "test-token"}
			// Other comments, more than a page of them.
			for i := range 150 {
				api.nextID++
				api.comments = append(api.comments, map[string]any{"id": api.nextID, "body": fmt.Sprintf("comment %d", i), "system": i%2 == 0})
			}
			srv := httptest.NewServer(api)
			defer srv.Close()
			env := []string{
				"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
				"HOME=" + root,
				"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			}
			if platform == "github" {
				env = append(env, "GITHUB_ACTIONS=true", "GITHUB_BASE_REF=main", "GITHUB_REF=refs/pull/7/merge",
					"GITHUB_REPOSITORY=acme/flags", "GITHUB_API_URL="+srv.URL, "GITHUB_TOKEN=test-token")
			} else {
				env = append(env, "GITLAB_CI=true", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main", "CI_MERGE_REQUEST_IID=7",
					"CI_PROJECT_ID=42", "CI_API_V4_URL="+srv.URL+"/api/v4", "GITLAB_TOKEN=test-token")
			}
			runScript := func() (int, string) {
				t.Helper()
				if platform == "github" {
					git(t, work, "checkout", "-q", "--detach", "refs/pull/7/merge")
				}
				cmd := exec.Command("sh", ".gitflags/ci.sh")
				cmd.Dir = work
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				git(t, work, "checkout", "-q", "-f", "change")
				return code, string(out)
			}

			// First push: a comment is created.
			push("beta users off", func() {
				editJSON(t, filepath.Join(work, "environments/production/features/new_checkout.json"), func(d map[string]any) {
					d["segment_overrides"].([]any)[0].(map[string]any)["enabled"] = false
				})
			})
			code, out := runScript()
			if code != 0 || !strings.Contains(out, "$ gitflags validate .") || !strings.Contains(out, "$ gitflags diff --format markdown origin/main...HEAD > gitflags-diff.md") {
				t.Fatalf("first run: exit %d\n%s", code, out)
			}
			reqs := api.takeRequests()
			marked := api.marked()
			if len(marked) != 1 || api.count() != 151 {
				t.Fatalf("%d marked comments of %d after the first run\n%s\nrequests %v", len(marked), api.count(), out, reqs)
			}
			first := marked[0]
			if body := first["body"].(string); !strings.Contains(body, "- ⚠️ `new_checkout` turned off for segment `beta_users` (priority 1) _(production)_") || !strings.Contains(body, "<sub>Updated for commit ") {
				t.Errorf("comment:\n%s", body)
			}
			if slices.ContainsFunc(reqs, func(r string) bool { return strings.HasPrefix(r, "PATCH") || strings.HasPrefix(r, "PUT") }) {
				t.Errorf("first run updated a comment: %v", reqs)
			}

			// Second push: the same comment is updated, none is added.
			push("dark mode on in staging", func() {
				editJSON(t, filepath.Join(work, "environments/staging/features/dark_mode.json"), func(d map[string]any) { d["enabled"] = true })
			})
			code, out = runScript()
			reqs = api.takeRequests()
			marked = api.marked()
			update := "PATCH /repos/acme/flags/issues/comments/151"
			if platform == "gitlab" {
				update = "PUT /api/v4/projects/42/merge_requests/7/notes/151"
			}
			if code != 0 || len(marked) != 1 || marked[0]["id"] != first["id"] || api.count() != 151 || !slices.Contains(reqs, update) {
				t.Fatalf("second run: exit %d, %d marked comments, requests %v\n%s", code, len(marked), reqs, out)
			}
			if slices.ContainsFunc(reqs, func(r string) bool { return strings.HasPrefix(r, "POST") }) {
				t.Errorf("second run posted a new comment: %v", reqs)
			}
			if body := marked[0]["body"].(string); !strings.Contains(body, "`dark_mode` turned on") || !strings.Contains(body, "`new_checkout` turned off for segment") {
				t.Errorf("updated comment:\n%s", body)
			}

			// Third push breaks a file: the job fails, after updating the
			// comment with the problems.
			push("broken", func() {
				os.WriteFile(filepath.Join(work, "features/dark_mode.json"), []byte("{\"id\": 1005}\n"), 0o644)
			})
			code, out = runScript()
			marked = api.marked()
			if code != 1 || len(marked) != 1 || !strings.Contains(marked[0]["body"].(string), "**⛔ HEAD fails validation**") || !strings.Contains(out, `features/dark_mode.json:1:1: missing required field "default"`) {
				t.Errorf("invalid change: exit %d, %d marked\n%s", code, len(marked), out)
			}

			// A rejected token: the job still reports validation, and says
			// the comment could not be posted.
			api.setToken("other")
			code, out = runScript()
			if code != 1 || !strings.Contains(out, "warning: could not post the diff as a comment") {
				t.Errorf("rejected token: exit %d\n%s", code, out)
			}
		})
	}
}
