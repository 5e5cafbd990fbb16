package gitsync

import (
	"context"
	"strings"
	"testing"
)

// TestMessagesWithNothingServed: before anything is served, a failed sync
// or an invalid revision does not claim that a last good revision keeps
// serving.
func TestMessagesWithNothingServed(t *testing.T) {
	dir := templateRepo(t)
	breakFeature(t, dir)
	commit(t, dir, "broken")
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"unknown branch", Options{Repo: openRepo(t, dir), Branch: "no-such-branch"}, "sync failed; no revision is served yet"},
		{"invalid revision", Options{Repo: openRepo(t, dir)}, "new revision not served: it is invalid; no revision is served yet"},
		{"invalid working tree", Options{WatchWorktree: true, Dir: dir}, "new revision not served: it is invalid; no revision is served yet"},
	} {
		logs := &logBuffer{}
		c.opts.Log = logs.logger()
		c.opts.Publish = (&recorder{}).publish
		s, err := New(c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(context.Background()); err == nil {
			t.Errorf("%s: Sync succeeded", c.name)
		}
		if got := logs.String(); !strings.Contains(got, c.want) || strings.Contains(got, "keeps serving") {
			t.Errorf("%s: logged\n%s\nwant %q", c.name, got, c.want)
		}
	}
}
