// Package gitsync keeps the served snapshot in step with the flag repository.
//
// A Syncer follows one branch of a repository in one of three modes:
//
//   - local: the repository on disk is watched with fsnotify (HEAD,
//     packed-refs and everything under refs/heads, in a work tree's .git
//     directory or a bare repository). A commit, merge, pull, reset or
//     `git pack-refs` by anyone is seen within milliseconds. Atomically
//     replaced ref files and removed and recreated directories are followed
//     (watches are added again). A periodic check (Interval) backs the
//     watches up.
//   - remote: a bare clone made by gitstore.Clone is fetched every Interval
//     and at once when Trigger is called (a webhook, POST /api/v1/sync).
//     Force-pushes are followed; a deleted remote branch is an error while
//     the last good snapshot keeps serving.
//   - worktree: the files of a working directory, committed or not, are
//     watched (debounced) and served; for development.
//
// A new revision is loaded off to the side (reusing the documents of unchanged
// blobs) and handed to Publish only when valid; an invalid revision is never
// published, its problems are kept for Status and logged once. The Syncer
// never writes to the repository's branches: the write path does, inside
// Write, which serves what it commits.
package gitsync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
)

// Mode says what a Syncer follows.
type Mode string

// The modes.
const (
	ModeLocal    Mode = "local"
	ModeRemote   Mode = "remote"
	ModeWorktree Mode = "worktree"
)

// Defaults of Options.
const (
	DefaultInterval     = 10 * time.Second
	DefaultFetchTimeout = 60 * time.Second
	DefaultDebounce     = 50 * time.Millisecond
	// refDebounce collapses the burst of events one ref update makes (and
	// avoids reading a ref file between its truncation and its write).
	refDebounce = 2 * time.Millisecond
)

// ErrPaused is returned by Sync while following is paused.
var ErrPaused = errors.New("sync is paused")

// Metrics receives measurements; the methods are called from the Syncer's
// goroutine and must not block. Status holds the same figures as counters.
type Metrics interface {
	// SyncDone is called after every sync attempt (a fetch and check in
	// remote mode, a check of the refs in local mode, a load of the work
	// tree in worktree mode), with its duration and error (nil on success;
	// an invalid revision is not a failed attempt, see Rejected).
	SyncDone(mode string, d time.Duration, err error)
	// Published is called when a new revision was published.
	Published(rev flagrepo.Revision)
	// Rejected is called once for every revision that was not published
	// because it is invalid or Publish refused it.
	Rejected(rev flagrepo.Revision, err error)
}

// Options configure a Syncer.
type Options struct {
	// Repo is the repository followed: a local repository (a work tree or a
	// bare repository), or with Remote a clone made by gitstore.Clone. It
	// may be nil in worktree mode when Dir is given.
	Repo *gitstore.Repo
	// Branch is the branch followed. Local: empty means HEAD (whatever branch
	// is checked out). Remote: empty means the branch recorded by Clone.
	Branch string
	// Remote makes the Syncer fetch from Repo's remote instead of watching
	// it on disk.
	Remote bool
	// Auth are the credentials of the remote (read from their files on every
	// fetch).
	Auth gitstore.Credentials
	// PreviewBranches are branch patterns fetched with Branch (remote
	// only), so that their heads can be previewed (package previews).
	PreviewBranches []string
	// Interval is the period of fetches in remote mode and of the checks
	// that back up the watches in local mode. Default 10 s.
	Interval time.Duration
	// FetchTimeout bounds one fetch. Default 60 s.
	FetchTimeout time.Duration
	// WatchWorktree serves the working directory (Dir, else Repo.Path()),
	// uncommitted edits included, reloading it Debounce after the last
	// change.
	WatchWorktree bool
	Dir           string
	// Debounce is the quiet time after a change of the working directory
	// before it is loaded. Default 50 ms.
	Debounce time.Duration
	// Reconcile, in remote mode, runs after every successful fetch with the
	// sync lock held (see Write): the write path pushes the commits it
	// could not push before, and returns the reference to serve ("" for the
	// remote branch; another while commits wait to be pushed). An error is
	// the sync's error, and the reference it returns is served all the same.
	Reconcile func(ctx context.Context) (ref string, err error)
	// Fetched, in remote mode, is told the outcome of every fetch (nil
	// when it succeeded): the write path keeps writes local at once while
	// the remote is down.
	Fetched func(err error)
	// Publish makes a new valid snapshot the served one. An error keeps the
	// old one serving and rejects the revision like a validation error.
	Publish func(*flagrepo.Snapshot) error
	// Served is the snapshot served already, if any: it is not published
	// again, and its documents are reused.
	Served *flagrepo.Snapshot
	// Log receives the Syncer's logs; nil discards them.
	Log *slog.Logger
	// Metrics, if not nil, receives measurements.
	Metrics Metrics
}

// Status describes the state of a Syncer, for the status endpoint.
type Status struct {
	Mode   Mode   `json:"mode"`             // local, remote or worktree
	Branch string `json:"branch,omitempty"` // the branch followed ("" = HEAD)
	Ref    string `json:"ref,omitempty"`    // the reference resolved
	Dir    string `json:"dir,omitempty"`    // the repository or working directory
	Remote string `json:"remote,omitempty"` // remote URL, without credentials
	Paused bool   `json:"paused"`

	// Served is the revision being served (nil before the first publish);
	// ServedSince is when it was published.
	Served      *flagrepo.Revision `json:"served"`
	ServedSince time.Time          `json:"served_since,omitzero"`
	// Newest is the newest revision seen, valid or not.
	Newest *Seen `json:"newest,omitempty"`

	// LastFetch is the start of the last sync attempt (fetch in remote mode,
	// check of the refs or load of the work tree otherwise), and
	// LastFetchDurationSeconds how long it took.
	LastFetch                time.Time `json:"last_fetch,omitzero"`
	LastFetchDurationSeconds float64   `json:"last_fetch_duration_seconds"`
	LastSuccess              time.Time `json:"last_success,omitzero"`
	// LastError is the error of the last attempt; empty when it succeeded.
	LastError           string `json:"last_error,omitempty"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	Successes           uint64 `json:"successes"` // sync attempts that succeeded
	Failures            uint64 `json:"failures"`  // sync attempts that failed
	Published           uint64 `json:"published"` // revisions published
	Rejected            uint64 `json:"rejected"`  // revisions not published (invalid)
}

// Seen is a revision the Syncer has seen and whether it could be served.
type Seen struct {
	Revision flagrepo.Revision  `json:"revision"`
	Valid    bool               `json:"valid"`
	Problems []flagrepo.Problem `json:"problems,omitempty"` // validation problems
	Error    string             `json:"error,omitempty"`    // why it is not served
	SeenAt   time.Time          `json:"seen_at"`
}

// Syncer follows a repository and publishes its new valid revisions.
type Syncer struct {
	opts    Options
	mode    Mode
	ref     string // the reference resolved (commit modes)
	dir     string // working directory (worktree mode)
	log     *slog.Logger
	trigger chan struct{}
	paused  atomic.Bool

	fetchMu sync.Mutex // one fetch at a time (remote mode), taken before syncMu
	syncMu  sync.Mutex // one sync at a time; guards the fields below
	served  *flagrepo.Snapshot
	seen    string // newest commit handled, published or rejected
	errMsg  string // last error logged, to log a repeated error once
	badTree string // error of the working tree rejected last

	mu sync.Mutex // guards st
	st Status

	servedSnap atomic.Pointer[flagrepo.Snapshot] // served, for Served
}

// New checks opts and returns a Syncer; call Run to start it.
func New(opts Options) (*Syncer, error) {
	if opts.Publish == nil {
		return nil, errors.New("gitsync: Options.Publish is required")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	s := &Syncer{opts: opts, trigger: make(chan struct{}, 1), log: opts.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.WatchWorktree:
		s.mode = ModeWorktree
		s.dir = opts.Dir
		if s.dir == "" {
			if opts.Repo == nil {
				return nil, errors.New("gitsync: worktree mode needs Options.Dir or Options.Repo")
			}
			s.dir = opts.Repo.Path()
		}
	case opts.Repo == nil:
		return nil, errors.New("gitsync: Options.Repo is required")
	case opts.Remote:
		s.mode = ModeRemote
		if opts.Branch == "" {
			b, err := opts.Repo.RemoteBranch()
			if err != nil {
				return nil, err
			}
			s.opts.Branch = b
		}
		s.ref = gitstore.RemoteRef(s.opts.Branch)
	default:
		s.mode = ModeLocal
		s.ref = "HEAD"
		if opts.Branch != "" {
			s.ref = "refs/heads/" + opts.Branch
		}
	}
	s.st = Status{Mode: s.mode, Branch: s.opts.Branch, Ref: s.ref, Dir: s.dir}
	if opts.Repo != nil && s.mode != ModeWorktree {
		s.st.Dir = opts.Repo.Path()
	}
	if s.mode == ModeRemote {
		s.st.Remote = opts.Repo.RemoteURL()
	}
	if opts.Served != nil {
		s.served = opts.Served
		s.servedSnap.Store(opts.Served)
		s.seen = opts.Served.Revision.SHA
		rev := opts.Served.Revision
		s.st.Served = &rev
		s.st.ServedSince = time.Now()
	}
	return s, nil
}

// Status returns the current state.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Paused = s.paused.Load()
	if st.Newest != nil {
		n := *st.Newest
		st.Newest = &n
	}
	return st
}

// Served returns the snapshot published last (or Options.Served), nil if none.
func (s *Syncer) Served() *flagrepo.Snapshot {
	return s.servedSnap.Load()
}

// Trigger asks Run for a sync as soon as possible (remote: a fetch). It never
// blocks; triggers that arrive while one is pending are coalesced into it.
func (s *Syncer) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Pause stops following: no fetch, no check, no publish until Resume. The
// served snapshot stays.
func (s *Syncer) Pause() {
	if !s.paused.Swap(true) {
		s.log.Warn("sync paused: new revisions are not followed until resumed", "mode", s.mode)
	}
}

// Resume follows again, starting with an immediate sync.
func (s *Syncer) Resume() {
	if s.paused.Swap(false) {
		s.log.Info("sync resumed", "mode", s.mode)
	}
	s.Trigger()
}

// Paused reports whether following is paused.
func (s *Syncer) Paused() bool { return s.paused.Load() }

// Sync runs one sync now and waits for it: in remote mode a fetch, then, if
// the followed commit is new, a load and publish. It returns the error of the
// attempt or of the new revision (a *flagrepo.ValidationError when invalid),
// nil when nothing is new, and ErrPaused while paused. Run need not be
// running; use it at startup to fail fast.
func (s *Syncer) Sync(ctx context.Context) error {
	if s.paused.Load() {
		return ErrPaused
	}
	if s.mode == ModeRemote {
		// The fetch (the network) runs without the sync lock, so that a
		// write never waits for a slow or hanging remote's fetch; one fetch
		// runs at a time.
		s.fetchMu.Lock()
		defer s.fetchMu.Unlock()
		start := time.Now()
		fctx, cancel := context.WithTimeout(ctx, s.opts.FetchTimeout)
		_, err := s.opts.Repo.Fetch(fctx, gitstore.RemoteOptions{Branch: s.opts.Branch, Auth: s.opts.Auth, AlsoBranches: s.opts.PreviewBranches})
		cancel()
		if s.opts.Fetched != nil && ctx.Err() == nil {
			s.opts.Fetched(err)
		}
		s.syncMu.Lock()
		defer s.syncMu.Unlock()
		return s.syncLocked(ctx, start, err)
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.syncLocked(ctx, time.Now(), nil)
}

// syncLocked finishes a sync with the sync lock held: in remote mode after
// the fetch that began at start and ended with fetchErr.
func (s *Syncer) syncLocked(ctx context.Context, start time.Time, fetchErr error) error {
	var err, rejected error
	switch s.mode {
	case ModeRemote:
		err = fetchErr
		if err == nil {
			ref := s.ref
			if s.opts.Reconcile != nil {
				var r string
				if r, err = s.opts.Reconcile(ctx); r != "" {
					ref = r
				}
			}
			var cerr error
			rejected, cerr = s.checkRef(ref)
			err = cmp.Or(err, cerr)
		}
		if err == nil {
			// Off the latency path: the new revision is published.
			if done, cerr := s.opts.Repo.Compact(0); cerr != nil {
				s.log.Warn("compacting the clone's packfiles failed", "error", cerr)
			} else if done {
				s.log.Debug("compacted the clone's packfiles")
			}
		}
	case ModeLocal:
		rejected, err = s.check()
	case ModeWorktree:
		rejected, err = s.loadWorktree()
	}
	if err != nil && ctx.Err() != nil {
		return err // shutting down (or the caller gave up): not a failure of the remote
	}
	s.attempted(start, err)
	if err != nil {
		return err
	}
	return rejected
}

// attempted records the outcome of a sync attempt.
func (s *Syncer) attempted(start time.Time, err error) {
	d := time.Since(start)
	s.mu.Lock()
	s.st.LastFetch = start
	s.st.LastFetchDurationSeconds = d.Seconds()
	failures := s.st.ConsecutiveFailures
	if err != nil {
		s.st.LastError = err.Error()
		s.st.ConsecutiveFailures++
		s.st.Failures++
	} else {
		s.st.LastError = ""
		s.st.LastSuccess = time.Now()
		s.st.ConsecutiveFailures = 0
		s.st.Successes++
	}
	s.mu.Unlock()
	if s.opts.Metrics != nil {
		s.opts.Metrics.SyncDone(string(s.mode), d, err)
	}
	// Log an error when it first occurs or changes, not on every attempt.
	switch {
	case err != nil && err.Error() != s.errMsg:
		s.errMsg = err.Error()
		msg := "sync failed; the last good revision keeps serving"
		if s.served == nil {
			msg = "sync failed; no revision is served yet"
		}
		s.log.Error(msg, "mode", s.mode, "error", err, "consecutive_failures", failures+1)
	case err == nil && s.errMsg != "":
		s.errMsg = ""
		s.log.Info("sync recovered", "mode", s.mode, "after_failures", failures)
	}
}

// check resolves the followed reference and, if it names a new commit,
// loads and publishes it. err is a failure to resolve or read; rejected is
// why a new revision was not published.
func (s *Syncer) check() (rejected, err error) { return s.checkRef(s.ref) }

// checkRef is check of the reference ref.
func (s *Syncer) checkRef(ref string) (rejected, err error) {
	h, err := s.opts.Repo.Resolve(ref)
	if err != nil {
		return nil, err
	}
	sha := h.String()
	if sha == s.seen {
		return nil, nil
	}
	snap, err := s.opts.Repo.Snapshot(sha, s.served)
	var ve *flagrepo.ValidationError
	if err != nil && !errors.As(err, &ve) {
		return nil, err // a read error: try again next time
	}
	if err == nil {
		err = s.publish(snap)
	}
	s.seen = sha
	if err != nil {
		rev, rerr := s.opts.Repo.Revision(h)
		if rerr != nil {
			rev = flagrepo.Revision{SHA: sha}
		}
		s.reject(rev, err)
		return err, nil
	}
	return nil, nil
}

// loadWorktree loads the working directory and publishes it when valid and
// changed.
func (s *Syncer) loadWorktree() (rejected, err error) {
	files, err := flagrepo.DirFiles(s.dir)
	if err != nil {
		return nil, err
	}
	rev := flagrepo.WorkingRevision()
	rev.Message = "uncommitted working tree of " + s.dir
	snap, err := flagrepo.Load(rev, files, s.served)
	var ve *flagrepo.ValidationError
	if err != nil && !errors.As(err, &ve) {
		return nil, err
	}
	if err == nil {
		s.badTree = ""
		err = s.publish(snap)
	}
	if err != nil {
		// The same problems again (an unrelated save) are not logged again.
		if err.Error() != s.badTree {
			s.badTree = err.Error()
			s.reject(rev, err)
		}
		return err, nil
	}
	return nil, nil
}

// Write runs write with the sync lock held, so that no sync interleaves with
// a write to the followed branch, and serves the snapshot write returns (the
// revision it moved the branch to) before returning: the write path's
// commits are served the way every other revision is. write gets the served
// snapshot (nil before the first publish); returning a nil snapshot serves
// nothing (a write that changed nothing, or one that went to another branch).
func (s *Syncer) Write(write func(served *flagrepo.Snapshot) (*flagrepo.Snapshot, error)) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	snap, err := write(s.served)
	if err != nil || snap == nil {
		return err
	}
	if err := s.publish(snap); err != nil {
		return err
	}
	s.seen = snap.Revision.SHA
	return nil
}

// publish hands snap to Publish and records it as served.
func (s *Syncer) publish(snap *flagrepo.Snapshot) error {
	if err := s.opts.Publish(snap); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	s.served = snap
	s.servedSnap.Store(snap)
	now := time.Now()
	rev := snap.Revision
	s.mu.Lock()
	s.st.Served = &rev
	s.st.ServedSince = now
	s.st.Newest = &Seen{Revision: rev, Valid: true, SeenAt: now}
	s.st.Published++
	s.mu.Unlock()
	if s.opts.Metrics != nil {
		s.opts.Metrics.Published(rev)
	}
	s.log.Info("serving new revision", "mode", s.mode, "revision", shortSHA(rev.SHA), "author", rev.Author, "time", rev.Time)
	return nil
}

// reject records a revision that is not served, and logs it (once: callers
// do not reject the same revision twice).
func (s *Syncer) reject(rev flagrepo.Revision, err error) {
	seen := &Seen{Revision: rev, Error: err.Error(), SeenAt: time.Now()}
	var ve *flagrepo.ValidationError
	if errors.As(err, &ve) {
		seen.Problems = ve.Problems
	}
	s.mu.Lock()
	s.st.Newest = seen
	s.st.Rejected++
	served := s.st.Served
	s.mu.Unlock()
	if s.opts.Metrics != nil {
		s.opts.Metrics.Rejected(rev, err)
	}
	args := []any{"mode", s.mode, "revision", shortSHA(rev.SHA), "author", rev.Author, "problems", len(seen.Problems)}
	msg := "new revision not served: it is invalid; no revision is served yet"
	if served != nil {
		args = append(args, "serving", shortSHA(served.SHA), "error", err)
		msg = "new revision not served: it is invalid; the last good revision keeps serving"
	} else if len(seen.Problems) == 0 {
		args = append(args, "error", err)
	} // else the caller of the first sync reports the problems (serve fails with them)
	s.log.Warn(msg, args...)
}

func shortSHA(sha string) string {
	if sha == "" {
		return "working-tree"
	}
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// step runs a sync from Run unless paused; errors are in the status and log.
func (s *Syncer) step(ctx context.Context) {
	if s.paused.Load() || ctx.Err() != nil {
		return
	}
	_ = s.Sync(ctx)
}

// Run follows the repository until ctx is done, then returns nil. It syncs at
// once, then on changes (local, worktree), every Interval (remote, and local
// as a backstop) and on Trigger. It returns an error only if it cannot start
// watching.
func (s *Syncer) Run(ctx context.Context) error {
	var w *watcher
	var err error
	switch s.mode {
	case ModeLocal:
		w, err = newRefWatcher(s.opts.Repo.GitDir())
	case ModeWorktree:
		w, err = newTreeWatcher(s.dir)
	}
	if err != nil {
		return err
	}
	if w != nil {
		defer w.close()
	}
	s.step(ctx)

	ticker := time.NewTicker(s.opts.Interval)
	defer ticker.Stop()
	var timer *time.Timer
	var timerC <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	arm := func(d time.Duration) {
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		timerC = timer.C
	}
	var events <-chan fsnotify.Event
	var werrs <-chan error
	if w != nil {
		events, werrs = w.fs.Events, w.fs.Errors
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok || !w.handle(ev) {
				continue
			}
			if s.mode == ModeWorktree {
				arm(s.opts.Debounce)
			} else {
				arm(refDebounce)
			}
		case err, ok := <-werrs:
			if !ok {
				continue
			}
			// Typically an overflow of the event queue: events were lost.
			w.rewatch()
			s.log.Warn("file watch error; checking the repository", "mode", s.mode, "error", err)
			arm(refDebounce)
		case <-timerC:
			timerC = nil
			s.step(ctx)
		case <-ticker.C:
			if s.mode != ModeWorktree {
				s.step(ctx)
			}
		case <-s.trigger:
			s.step(ctx)
		}
	}
}
