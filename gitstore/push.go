package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Errors that Push wraps, for errors.Is.
var (
	// ErrPushRejected means the remote refused the update because its branch
	// is not an ancestor of the pushed commit (someone pushed meanwhile):
	// fetch, apply the change again on the new head, and retry.
	ErrPushRejected = errors.New("the remote rejected the push")
	// ErrRemoteUnavailable means the remote could not be reached (connection
	// refused, unknown host, timeout, server error, no repository at the
	// URL): retry later.
	ErrRemoteUnavailable = errors.New("the remote is unavailable")
)

// Push pushes the commit of local reference src to reference dst of remote
// origin (for example refs/heads/main to refs/heads/main, or a new proposal
// branch refs/heads/gitflags/...), with the credentials of opts (read from
// their files now, as Fetch does). It never forces: when dst on the remote is
// not an ancestor of src's commit, or moves while the push runs, the error
// wraps ErrPushRejected. When the remote cannot be reached the error wraps
// ErrRemoteUnavailable; when it refuses the credentials, ErrCredentials. A
// push of a commit the remote has already is a success.
//
// After a successful push the remote-tracking reference that origin's fetch
// refspecs map dst to (refs/remotes/origin/<branch> for a clone made by
// Clone) points at the pushed commit, as git does. Pushes and fetches of one
// Repo run one after the other.
func (r *Repo) Push(ctx context.Context, src, dst plumbing.ReferenceName, opts RemoteOptions) error {
	for _, n := range []plumbing.ReferenceName{src, dst} {
		if !strings.HasPrefix(n.String(), "refs/") || n.Validate() != nil {
			return fmt.Errorf("push %s to %s: %q is not a valid reference name (refs/heads/<branch>)", src, dst, n)
		}
	}
	r.mu.Lock()
	commit, err := r.currentRef(src)
	r.mu.Unlock()
	if err == nil && commit.IsZero() {
		err = fmt.Errorf("%s does not exist", src)
	}
	if err != nil {
		return fmt.Errorf("push %s to %s: %w", src, dst, err)
	}

	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	rawURL, err := r.remoteURL()
	if err != nil {
		return fmt.Errorf("push %s to %s: %w", src, dst, err)
	}
	safe := ScrubURL(rawURL)
	auth, err := authFor(ctx, rawURL, opts.Auth)
	if err != nil {
		return fmt.Errorf("push %s to %s of %s: %w", src, dst, safe, err)
	}
	defer auth.Close()
	if r.fetchRepo == nil {
		if r.fetchRepo, err = git.PlainOpen(r.path); err != nil {
			return fmt.Errorf("push %s to %s of %s: open %s: %w", src, dst, safe, r.path, err)
		}
	}
	err = r.fetchRepo.PushContext(ctx, &git.PushOptions{
		RemoteName: RemoteName,
		RefSpecs:   []config.RefSpec{config.RefSpec(src.String() + ":" + dst.String())},
		Auth:       auth.method,
	})
	switch {
	case errors.Is(err, git.NoErrAlreadyUpToDate):
		// go-git skips the remote-tracking references then.
		return r.setTracking(dst, commit)
	case err != nil:
		return pushError(err, src, dst, rawURL, opts.Auth, auth)
	}
	return nil
}

// setTracking points the remote-tracking reference of remote branch dst at
// commit. The caller holds r.fetchMu.
func (r *Repo) setTracking(dst plumbing.ReferenceName, commit plumbing.Hash) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rem, err := r.repo.Remote(RemoteName)
	if err != nil {
		return err
	}
	for _, spec := range rem.Config().Fetch {
		if spec.Match(dst) {
			if err := r.repo.Storer.SetReference(plumbing.NewHashReference(spec.Dst(dst), commit)); err != nil {
				return fmt.Errorf("update %s: %w", spec.Dst(dst), err)
			}
		}
	}
	return nil
}

// pushError explains a failed push, wrapping ErrPushRejected,
// ErrRemoteUnavailable or ErrCredentials where they apply, without secrets.
func pushError(err error, src, dst plumbing.ReferenceName, rawURL string, creds Credentials, used *remoteAuth) error {
	what := fmt.Sprintf("push %s to %s of %s", src, dst, ScrubURL(rawURL))
	wrap := func(kind error, cause string) error {
		return &scrubbed{msg: scrub(fmt.Errorf("%s: %s", what, cause), used.secrets...).Error(), err: errors.Join(kind, err)}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "non-fast-forward"):
		return wrap(ErrPushRejected, fmt.Sprintf("the remote's %s has commits that the local %s lacks (someone pushed meanwhile): fetch, apply the change again, and retry", dst, src))
	case strings.HasPrefix(msg, "command error on"):
		// The remote's receive-pack refused the update.
		for _, s := range []string{"fetch first", "non-fast-forward", "stale info", "failed to lock", "cannot lock", "failed to update ref", "reference already exists"} {
			if strings.Contains(msg, s) {
				return wrap(ErrPushRejected, fmt.Sprintf("the remote refused the update of %s, which moved meanwhile (%s): fetch and retry", dst, msg))
			}
		}
		return scrub(fmt.Errorf("%s: the remote refused the update (a protected branch or a hook?): %s", what, msg), used.secrets...)
	case strings.HasPrefix(msg, "unpack error"):
		return scrub(fmt.Errorf("%s: the remote could not store the pushed objects: %s", what, msg), used.secrets...)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return wrap(ErrRemoteUnavailable, "no repository at that URL (moved or deleted, or no permission to see it)")
	case unreachable(err):
		return wrap(ErrRemoteUnavailable, fmt.Sprintf("the remote cannot be reached: %s", msg))
	}
	e := explain(err, rawURL, "", creds, used)
	if s, ok := e.(*scrubbed); ok {
		s.msg = "push" + strings.TrimPrefix(s.msg, "fetch")
	}
	return e
}

// unreachable reports whether err says that the remote could not be reached
// or did not answer: a network error, a timeout, a server error, or no
// repository at the URL. go-git wraps some causes in types without Unwrap.
func unreachable(err error) bool {
	for err != nil {
		var op *net.OpError
		var dns *net.DNSError
		var ne net.Error
		switch {
		case errors.Is(err, transport.ErrRepositoryNotFound),
			errors.Is(err, context.DeadlineExceeded),
			errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
			errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
			errors.Is(err, io.ErrUnexpectedEOF),
			errors.As(err, &op), errors.As(err, &dns),
			errors.As(err, &ne) && ne.Timeout():
			return true
		}
		switch e := err.(type) {
		case *plumbing.UnexpectedError:
			err = e.Err
		case *plumbing.PermanentError:
			err = e.Err
		case *githttp.Err:
			return e.Response.StatusCode >= http.StatusInternalServerError
		default:
			err = errors.Unwrap(err)
		}
	}
	return false
}
