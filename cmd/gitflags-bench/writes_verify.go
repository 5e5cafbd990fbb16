package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// verifyOutcome is what the history says about a writes run.
type verifyOutcome struct {
	OK       bool     `json:"ok"`
	Failures []string `json:"failures,omitempty"`
	Branch   string   `json:"branch"`
	Head     string   `json:"head"`
	Commits  int      `json:"commits"`
	Linear   bool     `json:"linear"` // no merge commits in the branch's history
	// Acknowledged writes (204): in the branch's history at the revision
	// their ETag named, carrying the value sent (AckedInHistory); not in
	// the history at all (Lost); in it but the revision named is not the
	// commit of that value (WrongRevision); two writes answered with the
	// same revision (DuplicateRevisions: every write here changes the
	// value, so each is its own commit).
	Acked              int `json:"acknowledged"`
	AckedInHistory     int `json:"acknowledged_in_history"`
	Lost               int `json:"lost"`
	WrongRevision      int `json:"wrong_revision"`
	DuplicateRevisions int `json:"duplicate_revisions"`
	// Writes answered otherwise (409, 503, timeouts, ...) and the ones of
	// those that are in the history all the same (fine: not acknowledged).
	Unacked          int `json:"unacknowledged"`
	UnackedCommitted int `json:"unacknowledged_committed"`
	// Read-backs that showed another write's value: fine when that write's
	// commit descends from the acknowledged one (ReadsLater), stale when
	// it is older or unknown (ReadsStale).
	ReadsLater int          `json:"reads_later_write"`
	ReadsStale int          `json:"reads_stale"`
	Fsck       []fsckResult `json:"fsck"`
}

type fsckResult struct {
	Repo  string `json:"repository"`
	Error string `json:"error,omitempty"`
}

// countCommits is the number of commits reachable from HEAD in repo.
func countCommits(repo string) (int, error) {
	out, err := git(repo, "rev-list", "--count", "HEAD")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// verifyWrites checks the writes of workers against the history of repo's
// HEAD branch and runs git fsck --strict on repo and on others.
func verifyWrites(repo string, others []string, env, feature string, workers []*writeWorker, commits0 int) (v verifyOutcome) {
	v.Linear = true
	fail := func(format string, a ...any) { v.Failures = append(v.Failures, fmt.Sprintf(format, a...)) }
	defer func() { v.OK = len(v.Failures) == 0 }()

	for _, r := range append([]string{repo}, others...) {
		res := fsckResult{Repo: r}
		if out, err := git(r, "fsck", "--strict", "--no-progress", "--no-dangling"); err != nil {
			res.Error = excerpt([]byte(err.Error() + " " + out))
			fail("git fsck --strict %s: %s", r, res.Error)
		}
		v.Fsck = append(v.Fsck, res)
	}
	branch, err := git(repo, "symbolic-ref", "-q", "HEAD")
	if err != nil {
		fail("%v", err)
		return v
	}
	v.Branch = strings.TrimSpace(branch)
	log, err := git(repo, "log", "--format=%H %P%x09%s", v.Branch)
	if err != nil {
		fail("%v", err)
		return v
	}
	// pos: index of each commit, newest first; valueAt: the commit that set
	// each value of the feature in the environment.
	pos := map[string]int{}
	valueAt := map[int64]string{}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(env+": "+feature+" ") + `.*?\bvalue (-?\d+) \(was `)
	for line := range strings.Lines(log) {
		line = strings.TrimSuffix(line, "\n")
		ids, subject, _ := strings.Cut(line, "\t")
		f := strings.Fields(ids)
		if len(f) == 0 {
			continue
		}
		if len(f) > 2 {
			v.Linear = false
		}
		pos[f[0]] = len(pos)
		if m := re.FindStringSubmatch(subject); m != nil {
			if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
				if _, seen := valueAt[n]; !seen { // newest first: keep the newest
					valueAt[n] = f[0]
				}
			}
		}
	}
	v.Commits = len(pos)
	if v.Commits > 0 {
		v.Head = strings.Fields(log)[0]
	}

	revs := map[string]int{}
	for _, w := range workers {
		for _, a := range w.acks {
			v.Acked++
			revs[a.revision]++
			if _, ok := pos[a.revision]; !ok {
				v.Lost++
				if v.Lost <= 5 {
					fail("acknowledged write of %d (revision %s) is not in the history of %s", a.value, a.revision, v.Branch)
				}
				continue
			}
			if valueAt[a.value] != a.revision {
				v.WrongRevision++
				if v.WrongRevision <= 5 {
					fail("acknowledged write of %d names revision %s, but the history sets that value in %q", a.value, a.revision, valueAt[a.value])
				}
				continue
			}
			v.AckedInHistory++
		}
		for _, val := range w.unacked {
			v.Unacked++
			if _, ok := valueAt[val]; ok {
				v.UnackedCommitted++
			}
		}
	}
	for _, n := range revs {
		if n > 1 {
			v.DuplicateRevisions += n - 1
		}
	}
	if v.Acked == 0 {
		fail("no write was acknowledged: nothing to verify")
	}
	if v.Lost > 5 {
		fail("%d acknowledged writes in all are not in the history", v.Lost)
	}
	if v.WrongRevision > 5 {
		fail("%d acknowledged writes in all name another revision than the one with their value", v.WrongRevision)
	}
	if v.DuplicateRevisions > 0 {
		fail("%d acknowledged writes share a revision with another one", v.DuplicateRevisions)
	}
	if want := commits0 + v.AckedInHistory + v.UnackedCommitted; v.Commits < want {
		fail("%d commits on %s, fewer than the %d before the run plus the %d writes found in history", v.Commits, v.Branch, commits0, v.AckedInHistory+v.UnackedCommitted)
	}

	for _, w := range workers {
		for _, r := range w.reads {
			if !readIsLater(repo, r, pos, valueAt, v.Linear) {
				v.ReadsStale++
				if v.ReadsStale <= 5 {
					fail("a read on %s after the write of %d (revision %s) showed %s: an older state", "server "+strconv.Itoa(r.after.server+1), r.after.value, shortRev(r.after.revision), r.seen)
				}
				continue
			}
			v.ReadsLater++
		}
	}
	if v.ReadsStale > 5 {
		fail("%d stale reads in all", v.ReadsStale)
	}
	return v
}

// readIsLater reports whether the value a read showed was set by a commit
// that descends from the write acknowledged before it.
func readIsLater(repo string, r readBack, pos map[string]int, valueAt map[int64]string, linear bool) bool {
	n, err := strconv.ParseInt(r.seen, 10, 64)
	if err != nil {
		return false
	}
	c, ok := valueAt[n]
	if !ok {
		return false // not set by any commit of the history: older than the run, or lost
	}
	if _, ok := pos[r.after.revision]; !ok {
		return false
	}
	if linear {
		return pos[c] < pos[r.after.revision] // newest first
	}
	_, err = git(repo, "merge-base", "--is-ancestor", r.after.revision, c)
	return err == nil && c != r.after.revision
}
