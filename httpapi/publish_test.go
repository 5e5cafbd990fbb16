package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/memrepo"
	"github.com/gitflags/gitflags/served"
)

// memRepo is a flag repository held in memory (memrepo.Repo).
type memRepo = memrepo.Repo

func readMemRepo(t *testing.T, dir string) memRepo { return memrepo.Read(t, dir) }

// withoutDates drops the dates that say when a revision was served rather
// than what it holds, so that answers can be compared across servers.
func withoutDates(t *testing.T, body []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	var strip func(v any)
	strip = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			delete(v, "updated_at")
			delete(v, "created_date")
			for _, x := range v {
				strip(x)
			}
		case []any:
			for _, x := range v {
				strip(x)
			}
		}
	}
	strip(v)
	return v
}

// TestPublishIncremental publishes a sequence of edits to one server, each
// snapshot loaded with the previous one (so unchanged documents are the same
// pointers and their pieces are reused), and checks every answer against a
// server that publishes the same revision from scratch, and that only the
// features an edit touches are encoded again.
func TestPublishIncremental(t *testing.T) {
	dir := t.TempDir()
	opts := repogen.Small()
	if err := repogen.Write(filepath.Join(dir, "repo"), opts); err != nil {
		t.Fatal(err)
	}
	repo := readMemRepo(t, filepath.Join(dir, "repo"))
	feature := func(i int) string { return "features/" + repogen.FeatureKey(i) + ".json" }
	state := func(env string, i int) string {
		return "environments/" + env + "/features/" + repogen.FeatureKey(i) + ".json"
	}
	steps := []struct {
		name   string
		change func()
		// reused is how many of the production environment's features keep
		// their pieces (are not encoded again); -1 to not check.
		reused int
	}{
		{"nothing", func() {}, opts.Features},
		{"feature description", func() {
			repo.Edit(t, feature(3), func(d map[string]any) { d["description"] = "changed" })
		}, opts.Features - 1},
		{"production state", func() {
			repo.Edit(t, state("production", 5), func(d map[string]any) {
				d["enabled"] = !(d["enabled"] == true)
				d["value"] = "changed"
			})
		}, opts.Features - 1},
		{"identity and segment overrides of a feature", func() {
			repo.Edit(t, state("production", 8), func(d map[string]any) {
				d["identity_overrides"] = []any{map[string]any{"identifiers": []any{"vip", "user-3"}, "enabled": true, "value": "vip"}}
				d["segment_overrides"] = []any{map[string]any{"segment": repogen.SegmentKey(4), "priority": 1, "enabled": true, "value": "seg4"}}
			})
		}, opts.Features - 1},
		{"overrides removed", func() {
			repo.Edit(t, state("production", 8), func(d map[string]any) {
				delete(d, "identity_overrides")
				delete(d, "segment_overrides")
			})
		}, opts.Features - 1},
		{"staging state only", func() {
			repo.Edit(t, state("staging", 6), func(d map[string]any) { d["enabled"] = !(d["enabled"] == true) })
		}, opts.Features},
		{"segment rules", func() {
			repo.Edit(t, "segments/"+repogen.SegmentKey(2)+".json", func(d map[string]any) {
				d["rules"] = []any{map[string]any{"type": "ALL", "conditions": []any{
					map[string]any{"property": "plan", "operator": "EQUAL", "value": "gold"}}}}
			})
		}, opts.Features},
		{"remove a feature", func() {
			key := repogen.FeatureKey(7)
			for p := range repo {
				if strings.HasSuffix(p, "/"+key+".json") {
					delete(repo, p)
				}
			}
		}, opts.Features - 1},
		{"add a feature", func() {
			repo["features/zz_new_feature.json"] = []byte(`{"id": 99999, "description": "new", "default": {"enabled": true, "value": "v"}}`)
			repo["environments/production/features/zz_new_feature.json"] = []byte(`{"enabled": false, "segment_overrides": [{"segment": "` + repogen.SegmentKey(1) + `", "priority": 1, "enabled": true, "value": "seg"}], "identity_overrides": [{"identifiers": ["vip"], "enabled": true, "value": "vip"}]}`)
		}, opts.Features - 1},
		{"an override on a segment that matches without an identity", func() {
			repo.Edit(t, "segments/"+repogen.SegmentKey(3)+".json", func(d map[string]any) {
				d["rules"] = []any{map[string]any{"type": "ALL", "conditions": []any{
					map[string]any{"property": "beta", "operator": "IS_NOT_SET"}}}}
			})
			repo.Edit(t, state("production", 9), func(d map[string]any) {
				d["enabled"] = false
				d["segment_overrides"] = []any{map[string]any{"segment": repogen.SegmentKey(3), "priority": 1, "enabled": true, "value": "no-identity"}}
			})
		}, -1},
		{"that segment's rule no longer matches without an identity", func() {
			repo.Edit(t, "segments/"+repogen.SegmentKey(3)+".json", func(d map[string]any) {
				d["rules"] = []any{map[string]any{"type": "ALL", "conditions": []any{
					map[string]any{"property": "beta", "operator": "IS_SET"}}}}
			})
		}, -1},
		{"a rule on the environment's name", func() {
			repo.Edit(t, "segments/"+repogen.SegmentKey(3)+".json", func(d map[string]any) {
				d["rules"] = []any{map[string]any{"type": "ALL", "conditions": []any{
					map[string]any{"property": "$.environment.name", "operator": "EQUAL", "value": "Live"}}}}
			})
		}, -1},
		{"the environment renamed to match it", func() {
			repo.Edit(t, "environments/production/environment.json", func(d map[string]any) { d["name"] = "Live" })
		}, -1},
		{"client key rotated", func() {
			repo.Edit(t, "environments/production/environment.json", func(d map[string]any) { d["client_key"] = "rotated_production_key" })
		}, -1},
		{"environment id changed", func() {
			repo.Edit(t, "environments/production/environment.json", func(d map[string]any) { d["id"] = 777 })
		}, -1},
		{"environment settings", func() {
			repo.Edit(t, "environments/production/environment.json", func(d map[string]any) { d["hide_disabled_flags"] = true })
		}, 0},
		{"server-key-only feature", func() {
			repo.Edit(t, feature(4), func(d map[string]any) { d["server_key_only"] = true })
		}, opts.Features - 1},
	}
	when := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	incremental := New(Options{Log: ofrepQuietLog})
	seen := map[string]ofrepSeen{} // by environment and context: the previous step's answer
	var prev *flagrepo.Snapshot
	for i, step := range steps {
		step.change()
		rev := flagrepo.Revision{SHA: fmt.Sprintf("%040d", i+1), Time: when}
		snap, err := flagrepo.Load(rev, repo.Files(), prev)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		first := incremental.current.Load() == nil
		if i%2 == 1 { // every other step as the write path does it: prepared, then published
			incremental.Prepare(snap)
		}
		if err := incremental.Publish(snap); err != nil {
			t.Fatalf("%s: publish: %v", step.name, err)
		}
		fresh := New(Options{Log: ofrepQuietLog})
		freshSnap, err := flagrepo.Load(rev, repo.Files(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.Publish(freshSnap); err != nil {
			t.Fatal(err)
		}
		got, want := incremental.current.Load(), fresh.current.Load()
		if !first && step.reused >= 0 {
			if n := len(snap.Features) - got.Env("production").Encoded(); n != step.reused {
				t.Errorf("%s: %d features of production reused their pieces, want %d", step.name, n, step.reused)
			}
		}
		compareStates(t, step.name, got, want)
		compareAnswers(t, step.name, incremental, fresh, snap, seen)
		prev = snap
	}
}

func compareStates(t *testing.T, step string, got, want *state) {
	t.Helper()
	keys := func(st *state) (ks []string) {
		for k := range st.Envs() {
			ks = append(ks, k)
		}
		return ks
	}
	if !slices.Equal(keys(got), keys(want)) {
		t.Fatalf("%s: environments differ", step)
	}
	for key, w := range want.Envs() {
		g := got.Env(key)
		where := step + ": " + key
		for _, server := range []bool{true, false} {
			gf, _ := g.Flags(server)
			wf, _ := w.Flags(server)
			if !bytes.Equal(gf, wf) {
				t.Errorf("%s: /flags/ (server key: %t) differs:\n got %s\nwant %s", where, server, gf, wf)
			}
		}
		if gd, wd := withoutDates(t, documentBody(g.Document())), withoutDates(t, documentBody(w.Document())); !reflect.DeepEqual(gd, wd) {
			t.Errorf("%s: environment document differs", where)
		}
		for _, server := range []bool{true, false} {
			if !bytes.Equal(g.OFREP().Seed(server), w.OFREP().Seed(server)) {
				t.Errorf("%s: OFREP ETag seeds (server key: %t) differ", where, server)
			}
			gb, _ := g.OFREP().Bulk(server)
			wb, _ := w.OFREP().Bulk(server)
			if !bytes.Equal(gb, wb) {
				t.Errorf("%s: OFREP bulk answer (server key: %t) differs", where, server)
			}
		}
	}
}

// compareAnswers asks both servers the same OFREP questions with targeting
// contexts, which evaluate every flag.
// ofrepSeen is an OFREP answer and its ETag.
type ofrepSeen struct{ body, etag string }

// compareAnswers also checks, against seen (the answers of the previous
// step, updated), that an answer that changed got a new ETag: a client
// holding the old one must not get a 304.
func compareAnswers(t *testing.T, step string, a, b *Server, snap *flagrepo.Snapshot, seen map[string]ofrepSeen) {
	t.Helper()
	ha, hb := a.Handler(), b.Handler()
	for _, env := range snap.EnvironmentKeys() {
		key := snap.Environments[env].ClientKey
		for i := range 20 {
			ctx := fmt.Sprintf(`{"context":{"targetingKey":"user-%d","plan":%q,"country":"DE","age":%d}}`, i, []string{"free", "gold", "premium"}[i%3], 20+i)
			if i == 0 {
				ctx = `{"context":{"targetingKey":"vip"}}`
			}
			wa := ofrepDo(t, ha, ofrepFlagsURL, key, ctx)
			wb := ofrepDo(t, hb, ofrepFlagsURL, key, ctx)
			if wa.Code != http.StatusOK || wa.Body.String() != wb.Body.String() || wa.Header().Get("ETag") != wb.Header().Get("ETag") {
				t.Errorf("%s: %s: OFREP answers differ for %s:\n%d %s\n%d %s", step, env, ctx, wa.Code, wa.Body, wb.Code, wb.Body)
			}
			now := ofrepSeen{wa.Body.String(), wa.Header().Get("ETag")}
			if was, ok := seen[env+ctx]; ok && was.body != now.body && was.etag == now.etag {
				t.Errorf("%s: %s: the answer for %s changed but kept its ETag %s", step, env, ctx, now.etag)
			}
			seen[env+ctx] = now
		}
	}
}

// documentBody returns the document as one byte slice, as the handler
// writes it.
func documentBody(d *served.Document) []byte {
	var b bytes.Buffer
	b.Grow(d.Size())
	_, _ = d.WriteTo(&b)
	return b.Bytes()
}

// TestPrepare: Publish swaps in the state Prepare built for the same
// snapshot against the state still served, and builds afresh otherwise (a
// publish in between, or another snapshot).
func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	if err := repogen.Write(filepath.Join(dir, "repo"), repogen.Small()); err != nil {
		t.Fatal(err)
	}
	repo := readMemRepo(t, filepath.Join(dir, "repo"))
	var prev *flagrepo.Snapshot
	next := func(i int) *flagrepo.Snapshot {
		repo.Edit(t, "environments/production/features/"+repogen.FeatureKey(2)+".json", func(d map[string]any) { d["value"] = fmt.Sprint("v", i) })
		snap, err := flagrepo.Load(flagrepo.Revision{SHA: fmt.Sprintf("%040d", i), Time: time.Unix(int64(1e9+i), 0)}, repo.Files(), prev)
		if err != nil {
			t.Fatal(err)
		}
		prev = snap
		return snap
	}
	s := New(Options{Log: ofrepQuietLog})
	if err := s.Publish(next(1)); err != nil {
		t.Fatal(err)
	}

	a := next(2)
	s.Prepare(a)
	p := s.prepared.Load()
	<-p.done
	if err := s.Publish(a); err != nil {
		t.Fatal(err)
	}
	if got := s.current.Load().State; got != p.state || p.err != nil {
		t.Errorf("the prepared state was not the one published (%v)", p.err)
	}

	// Prepared, then another snapshot published first: built again.
	b, c := next(3), next(4)
	s.Prepare(c)
	p = s.prepared.Load()
	<-p.done
	if err := s.Publish(b); err != nil {
		t.Fatal(err)
	}
	if s.prepared.Load() != nil {
		t.Error("a publish of another snapshot kept the preparation")
	}
	if err := s.Publish(c); err != nil {
		t.Fatal(err)
	}
	if got := s.current.Load().State; got == p.state || got.Snapshot() != c {
		t.Error("a state prepared against an older state was published")
	}
	s.CloseStreams()
}
