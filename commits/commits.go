// Package commits is the write path of a flag repository: it turns an edit
// of documents (package edit) into one validated commit with the caller as
// author, moves the served branch (or a proposal branch) to it, pushes it
// when the repository follows a remote, and has it served before returning.
//
// One Writer serves one repository and runs one write at a time; callers
// queue (a bounded queue: past it, ErrBusy). A write applies its edit to the
// branch head, validates the whole resulting snapshot with the same code as
// `gitflags validate`, and only then commits. When the branch moved
// meanwhile (a commit by hand, another server pushing to the same remote),
// the edit is applied again on the new head, validated again and retried a
// bounded number of times, so a write never overwrites or orphans anyone
// else's commit.
package commits

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags/edit"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
)

// Errors a write can end with (besides *edit.InputError, *edit.NotFoundError
// and *flagrepo.ValidationError, which describe bad input).
var (
	// ErrStale: the request's If-Match names another revision than the
	// branch head.
	ErrStale = errors.New("the branch has moved since the revision in If-Match")
	// ErrConflict: the branch kept moving, or the change no longer applies
	// to its new head.
	ErrConflict = errors.New("the change could not be applied")
	// ErrBusy: too many writes are waiting.
	ErrBusy = errors.New("too many writes waiting")
	// ErrNotWritable: the server follows something it cannot write to (a
	// working directory, a detached HEAD).
	ErrNotWritable = errors.New("the served repository cannot be written to")
)

// Syncer serves the revisions a write makes: gitsync.Syncer's Write.
type Syncer interface {
	Write(func(served *flagrepo.Snapshot) (*flagrepo.Snapshot, error)) error
}

// Options configure a Writer.
type Options struct {
	Repo *gitstore.Repo
	Sync Syncer
	// Branch is the branch written: the branch served. Local: empty means
	// the branch HEAD names.
	Branch string
	// Remote makes writes push to the repository's remote origin (a clone
	// made by gitstore.Clone) with Auth.
	Remote bool
	Auth   gitstore.Credentials
	// Committer is the committer of every write (the author is the caller).
	Committer object.Signature
	// Attempts bounds how often a write is applied again after the branch
	// moved (default 5). Queue bounds the writes waiting (default 256).
	Attempts, Queue int
	// PushTimeout bounds one push (default 60 s; 15 s with OfflineWrites,
	// after which the write is kept locally).
	PushTimeout time.Duration
	// OfflineWrites lets a write go on when the remote cannot be reached: it
	// is committed in the clone, served, and pushed later (offline.go).
	// Without it such a write fails, wrapping gitstore.ErrRemoteUnavailable.
	OfflineWrites bool
	// Prepare, when set, is called with the snapshot of a write's commit
	// once it validates, before the branch is moved or pushed: the server
	// starts building what it will serve (httpapi.Server.Prepare) while Git
	// works. It must not block; the snapshot may never be served (the
	// branch moved meanwhile).
	Prepare func(*flagrepo.Snapshot)
}

// Writer writes to one repository, one write at a time.
type Writer struct {
	opts   Options
	branch string // the branch written, e.g. main
	queue  chan struct{}
	turn   chan struct{} // held by the running write

	mu     sync.Mutex
	status Status    // Branch and Kept are kept up to date by Status
	downAt time.Time // when a push last found the remote unreachable; zero after a success
	// checked caches whether proposal heads validate, by commit (a commit
	// never changes): listing proposals loads each head once. Guarded by mu.
	checked map[plumbing.Hash][]flagrepo.Problem
}

// New returns a Writer for opts.
func New(opts Options) (*Writer, error) {
	if opts.Repo == nil || opts.Sync == nil {
		return nil, errors.New("commits: Options.Repo and Options.Sync are required")
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.PushTimeout <= 0 {
		opts.PushTimeout = 60 * time.Second
		if opts.OfflineWrites {
			opts.PushTimeout = 15 * time.Second
		}
	}
	branch := opts.Branch
	if branch == "" {
		var err error
		if opts.Remote {
			branch, err = opts.Repo.RemoteBranch()
		} else {
			branch, err = opts.Repo.HeadBranch()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotWritable, err)
		}
	}
	w := &Writer{opts: opts, branch: branch, queue: make(chan struct{}, opts.Queue), turn: make(chan struct{}, 1)}
	if opts.Remote {
		w.recoverStatus()
	}
	return w, nil
}

// Branch returns the branch writes go to.
func (w *Writer) Branch() string { return w.branch }

// Request is one write.
type Request struct {
	// Edit computes the change from the snapshot and files of the head it
	// applies to. It may run more than once (on a new head).
	Edit func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error)
	// Author is the caller: the token's owner.
	Author object.Signature
	// IfMatch, when set, is the revision the caller saw: the write fails
	// with ErrStale when the branch head is another.
	IfMatch string
	// Propose sends the commit to a new branch, Proposal names it
	// (gitflags/<Proposal>-<short id>), instead of the served branch. A
	// write that affects an environment with review_required is proposed
	// whatever Propose says.
	Propose  bool
	Proposal string
}

// Result says what a write did.
type Result struct {
	Revision string // the new commit, or the head when nothing changed
	Summary  string // what changed, the commit message's subject
	Changed  bool   // false when the edit changed nothing (no commit)
	// Proposed writes: the branch made, and for GitHub and GitLab remotes
	// the URL that opens a pull (merge) request from it.
	Branch, URL string
	// Review names the environment with review_required that sent the
	// write to a proposal branch, when the caller did not ask for one.
	Review string
	// Unpushed is the number of commits waiting for the remote, this one
	// included, when the remote could not be reached (OfflineWrites).
	Unpushed int
}

// reviewRequired returns an environment with review_required that changes
// affect, or "": one whose own files change, or any such environment when
// what every environment shares changes (features, segments, settings).
func reviewRequired(snap *flagrepo.Snapshot, changes map[string][]byte) string {
	for _, env := range snap.EnvironmentKeys() {
		if !snap.Environments[env].ReviewRequired {
			continue
		}
		for p := range changes {
			if !strings.HasPrefix(p, "environments/") || strings.HasPrefix(p, "environments/"+env+"/") {
				return env
			}
		}
	}
	return ""
}

// Write applies req: see the package documentation. It returns when the
// new revision is served (or the proposal branch pushed).
func (w *Writer) Write(ctx context.Context, req Request) (Result, error) {
	select {
	case w.queue <- struct{}{}:
	default:
		return Result{}, ErrBusy
	}
	defer func() { <-w.queue }()
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	defer func() { <-w.turn }()

	var res Result
	err := w.opts.Sync.Write(func(served *flagrepo.Snapshot) (*flagrepo.Snapshot, error) {
		var snap *flagrepo.Snapshot
		var err error
		res, snap, err = w.write(ctx, req, served)
		return snap, err
	})
	return res, err
}

// headRef is the reference that names the branch head the server serves:
// in remote mode, the commits waiting to be pushed if any, else the remote
// branch.
func (w *Writer) headRef() string {
	if w.opts.Remote {
		if !w.unpushedHead().IsZero() {
			return string(UnpushedRef(w.branch))
		}
		return gitstore.RemoteRef(w.branch)
	}
	return "refs/heads/" + w.branch
}

func (w *Writer) write(ctx context.Context, req Request, served *flagrepo.Snapshot) (Result, *flagrepo.Snapshot, error) {
	var lastErr error
	for attempt := 0; attempt < w.opts.Attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return Result{}, nil, err
		}
		res, snap, err := w.attempt(ctx, req, served)
		if !errors.Is(err, errMoved) {
			return res, snap, err
		}
		lastErr = err
		if w.opts.Remote {
			// Another writer (a second server on the same remote) won the
			// race: wait a random while, growing with each attempt, so that
			// the writers take turns instead of one always winning.
			if err := sleep(ctx, time.Duration(rand.Int64N(int64(20*time.Millisecond)<<attempt))); err != nil {
				return Result{}, nil, err
			}
			fctx, cancel := context.WithTimeout(ctx, w.opts.PushTimeout)
			_, err := w.opts.Repo.Fetch(fctx, gitstore.RemoteOptions{Branch: w.branch, Auth: w.opts.Auth})
			cancel()
			if err != nil {
				return Result{}, nil, fmt.Errorf("fetch after a rejected push: %w", err)
			}
			// Commits waiting from an outage go first; if they no longer
			// apply they are kept on a branch, and this write goes on.
			if pending := w.unpushedHead(); !pending.IsZero() {
				if _, err := w.reconcile(ctx, pending); err != nil && !errors.Is(err, ErrConflict) {
					return Result{}, nil, err
				}
			}
		}
	}
	return Result{}, nil, fmt.Errorf("%w: the branch %s moved %d times while writing (%v); try again", ErrConflict, w.branch, w.opts.Attempts, lastErr)
}

// errMoved: the branch moved under the write; apply it again on the new head.
var errMoved = errors.New("the branch moved")

// attempt applies req once on the current head.
func (w *Writer) attempt(ctx context.Context, req Request, served *flagrepo.Snapshot) (Result, *flagrepo.Snapshot, error) {
	head, err := w.opts.Repo.Resolve(w.headRef())
	if err != nil {
		return Result{}, nil, fmt.Errorf("%w: %v", ErrNotWritable, err)
	}
	if req.IfMatch != "" && req.IfMatch != head.String() {
		return Result{}, nil, fmt.Errorf("%w: the head of %s is %s, not %s", ErrStale, w.branch, head, req.IfMatch)
	}
	base := served
	if base == nil || base.Revision.SHA != head.String() {
		if base, err = w.opts.Repo.Snapshot(head.String(), served); err != nil {
			return Result{}, nil, fmt.Errorf("%w: the head of %s (%s) does not load: %v", ErrConflict, w.branch, short(head.String()), err)
		}
	}
	change, err := req.Edit(base, headFiles{w.opts.Repo, head})
	if err != nil {
		return Result{}, nil, err
	}
	res := Result{Revision: head.String(), Summary: change.Summary}
	if len(change.Changes) == 0 {
		return res, nil, nil
	}
	if env := reviewRequired(base, change.Changes); env != "" && !req.Propose {
		req.Propose, res.Review = true, env
	}
	author := req.Author
	if author.When.IsZero() {
		author.When = time.Now()
	}
	commit, err := w.opts.Repo.Commit(gitstore.CommitOptions{
		Parent: head, Changes: fileChanges(change.Changes),
		Author: author, Committer: w.committer(), Message: change.Summary + "\n",
	})
	if err != nil {
		return Result{}, nil, fmt.Errorf("commit: %w", err)
	}
	snap, err := w.opts.Repo.Snapshot(commit.String(), base)
	if err != nil {
		return Result{}, nil, err // a *flagrepo.ValidationError: nothing is committed to a branch
	}
	res.Revision, res.Changed = commit.String(), true
	if req.Propose {
		res.Branch, res.URL, err = w.propose(ctx, req.Proposal, commit)
		return res, nil, err
	}
	if w.opts.Prepare != nil {
		w.opts.Prepare(snap)
	}
	if w.opts.Remote {
		var err error
		if w.opts.OfflineWrites && w.knownDown() {
			// The remote did not answer moments ago: no write waits for it
			// again; the commits are pushed after the next successful fetch.
			err = fmt.Errorf("%w: it did not answer the last push, %s ago", gitstore.ErrRemoteUnavailable, w.downFor())
		} else {
			err = w.push(ctx, commit, plumbing.NewBranchReferenceName(w.branch))
		}
		switch {
		case err == nil:
			if pending := w.unpushedHead(); !pending.IsZero() { // pushed along with this one
				if err := w.dropUnpushed(); err != nil {
					return Result{}, nil, err
				}
			}
		case errors.Is(err, gitstore.ErrRemoteUnavailable) && w.opts.OfflineWrites:
			previous := w.unpushedHead()
			if res.Unpushed, err = w.keepUnpushed(commit, previous, err); err != nil {
				return Result{}, nil, err
			}
		default:
			return Result{}, nil, err
		}
		return res, snap, nil
	}
	switch err := w.opts.Repo.UpdateRef(plumbing.NewBranchReferenceName(w.branch), commit, head); {
	case errors.Is(err, gitstore.ErrRefMoved):
		return Result{}, nil, fmt.Errorf("%w: %v", errMoved, err)
	case errors.Is(err, gitstore.ErrWorktreeDirty), errors.Is(err, gitstore.ErrLocked):
		return Result{}, nil, fmt.Errorf("%w: %v", ErrConflict, err)
	case err != nil:
		return Result{}, nil, fmt.Errorf("move %s: %w", w.branch, err)
	}
	return res, snap, nil
}

// writeRef is the local reference a commit is pushed from.
const writeRef = plumbing.ReferenceName("refs/gitflags/write")

// push pushes commit to the remote's dst. A rejection (the remote moved) is
// errMoved, to fetch and apply again.
func (w *Writer) push(ctx context.Context, commit plumbing.Hash, dst plumbing.ReferenceName) error {
	if err := w.opts.Repo.SetRef(writeRef, commit); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	// A client that leaves does not cut the push short: its outcome would
	// be unknown (the remote may have taken it).
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.PushTimeout)
	defer cancel()
	err := w.opts.Repo.Push(pctx, writeRef, dst, gitstore.RemoteOptions{Branch: w.branch, Auth: w.opts.Auth})
	switch {
	case errors.Is(err, gitstore.ErrPushRejected):
		w.setDown(false)
		return fmt.Errorf("%w: %v", errMoved, err)
	case errors.Is(err, gitstore.ErrRemoteUnavailable):
		w.setDown(true)
		return fmt.Errorf("push to %s: %w", w.opts.Repo.RemoteURL(), err)
	case err != nil:
		return fmt.Errorf("push to %s: %w", w.opts.Repo.RemoteURL(), err)
	}
	w.setDown(false)
	return nil
}

// retryDown is how long, after a push found the remote unreachable, break-
// glass writes are kept locally without trying to push first (the push after
// a successful fetch, or the first write after it, tries again).
const retryDown = 30 * time.Second

// setDown records whether the last push found the remote unreachable.
func (w *Writer) setDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !down {
		w.downAt = time.Time{}
	} else if w.downAt.IsZero() || time.Since(w.downAt) > retryDown {
		w.downAt = time.Now()
	}
}

// downFor returns how long ago a push found the remote unreachable.
func (w *Writer) downFor() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Since(w.downAt).Round(time.Second)
}

// knownDown reports whether a push found the remote unreachable less than
// retryDown ago.
func (w *Writer) knownDown() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.downAt.IsZero() && time.Since(w.downAt) < retryDown
}

// propose makes the branch gitflags/<name>-<short id> at commit (pushed when
// the repository follows a remote) and returns it with the URL that opens a
// pull request from it.
func (w *Writer) propose(ctx context.Context, name string, commit plumbing.Hash) (branch, prURL string, err error) {
	if name == "" {
		name = "change"
	}
	branch = "gitflags/" + name + "-" + commit.String()[:8]
	ref := plumbing.NewBranchReferenceName(branch)
	if w.opts.Remote {
		if err := w.push(ctx, commit, ref); err != nil {
			return "", "", err
		}
		// Kept in the clone too, so that Proposals lists it.
		if err := w.opts.Repo.SetRef(ref, commit); err != nil {
			return "", "", err
		}
	} else if err := w.opts.Repo.UpdateRef(ref, commit, plumbing.ZeroHash); err != nil {
		return "", "", fmt.Errorf("create branch %s: %w", branch, err)
	}
	return branch, pullRequestURL(w.opts.Repo.RemoteURL(), w.branch, branch), nil
}

// pullRequestURL returns the URL that opens a pull request of branch into
// base on GitHub or a merge request on GitLab, or "" for other hosts.
func pullRequestURL(remote, base, branch string) string {
	host, repoPath := "", ""
	if u, err := url.Parse(remote); err == nil && u.Host != "" {
		host, repoPath = u.Hostname(), u.Path
	} else if at, colon := strings.Index(remote, "@"), strings.Index(remote, ":"); at >= 0 && colon > at {
		host, repoPath = remote[at+1:colon], remote[colon+1:] // git@host:owner/repo.git
	}
	repoPath = strings.TrimSuffix(strings.Trim(path.Clean("/"+repoPath), "/"), ".git")
	if repoPath == "" {
		return ""
	}
	switch {
	case host == "github.com":
		return "https://github.com/" + repoPath + "/compare/" + url.PathEscape(base) + "..." + url.PathEscape(branch) + "?expand=1"
	case host == "gitlab.com" || strings.HasPrefix(host, "gitlab."):
		q := url.Values{"merge_request[source_branch]": {branch}, "merge_request[target_branch]": {base}}
		return "https://" + host + "/" + repoPath + "/-/merge_requests/new?" + q.Encode()
	}
	return ""
}

func (w *Writer) committer() object.Signature {
	c := w.opts.Committer
	if c.Name == "" {
		c = gitstore.DefaultAuthor()
	}
	c.When = time.Now()
	return c
}

func fileChanges(m map[string][]byte) []gitstore.FileChange {
	out := make([]gitstore.FileChange, 0, len(m))
	for p, data := range m {
		out = append(out, gitstore.FileChange{Path: p, Data: data, Delete: data == nil})
	}
	return out
}

// headFiles reads the files of one commit.
type headFiles struct {
	repo   *gitstore.Repo
	commit plumbing.Hash
}

func (f headFiles) ReadFile(name string) ([]byte, error) { return f.repo.ReadFile(f.commit, name) }

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func short(sha string) string { return sha[:min(len(sha), 12)] }
