package gitstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// RemoteName is the name of the remote a clone made by Clone fetches from.
const RemoteName = "origin"

// TokenUsername is the user name sent with a bare token read from a
// credentials file. GitHub wants it (any non-empty name works for GitLab and
// most other hosts, which check only the token).
const TokenUsername = "x-access-token"

// RemoteRef returns the reference a clone made by Clone keeps a remote
// branch's newest fetched commit in: refs/remotes/origin/<branch>. Fetch only
// ever updates these references; no local branch is written.
func RemoteRef(branch string) string {
	return "refs/remotes/" + RemoteName + "/" + branch
}

// Credentials say how to authenticate to a remote. Secrets are read from
// files, again on every fetch, so that they can be rotated without a restart;
// they never appear in errors.
type Credentials struct {
	// PasswordFile is used for http:// and https:// remotes: its first line
	// is either "username:password" or a bare token, which is sent as the
	// password of user TokenUsername. Surrounding white space is ignored.
	PasswordFile string
	// SSHKeyFile is a private key (PEM or OpenSSH format) for ssh:// and
	// scp-like (git@host:path) remotes. Without it, the SSH agent
	// (SSH_AUTH_SOCK) is asked.
	SSHKeyFile string
	// SSHKeyPassphraseFile holds the key's passphrase on its first line, if
	// the key is encrypted.
	SSHKeyPassphraseFile string
	// SSHKnownHostsFile lists the remote's host keys in OpenSSH known_hosts
	// format. Empty means the files of the SSH_KNOWN_HOSTS environment
	// variable, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. A host
	// key that is not listed is refused.
	SSHKnownHostsFile string
}

// RemoteOptions configure Clone and Fetch.
type RemoteOptions struct {
	// Branch is the remote branch to follow. Empty means the branch the
	// remote's HEAD names at clone time (recorded as refs/remotes/origin/HEAD).
	Branch string
	// Auth authenticates to the remote.
	Auth Credentials
}

// userinfo matches the user information of URLs in free text.
var userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@`)

// ScrubURL removes the user information (user name and password) from the
// URLs in s, so that s can be logged.
func ScrubURL(s string) string {
	return userinfo.ReplaceAllString(s, "${1}")
}

// scrubbed is an error whose message had secrets removed. It unwraps to the
// original error for errors.Is and errors.As; print only Error.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub returns err with URLs' user information and every secret removed
// from its message.
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := ScrubURL(err.Error())
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	return &scrubbed{msg: msg, err: err}
}

// Clone makes a bare clone of the repository at rawURL (https://, http://,
// ssh://, git@host:path or file://; file:// needs the git binary, the others
// do not) into dir, fetching opts.Branch (or the remote's default branch)
// into refs/remotes/origin/<branch>. dir must not exist or be empty; nothing
// is left behind when Clone fails.
//
// When dir already holds a clone of rawURL (a restart), Clone opens it and
// fetches. If only that fetch fails, Clone returns the repository as well as
// the error, so a server can start from what it fetched before.
func Clone(ctx context.Context, rawURL, dir string, opts RemoteOptions) (*Repo, error) {
	safe := ScrubURL(rawURL)
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("clone %s: not a repository URL: %w", safe, scrub(err))
	}
	// The URL is kept in the clone's configuration on disk, so it must not
	// carry secrets: those go in files that are re-read on every fetch.
	if ep.Password != "" || ((ep.Protocol == "http" || ep.Protocol == "https") && ep.User != "") {
		return nil, fmt.Errorf("clone %s: the URL carries credentials; remove them from the URL and put them in a credentials file (--credentials-file: \"user:password\" or a token), which is never stored or logged", safe)
	}
	if existing, err := git.PlainOpen(dir); err == nil {
		rem, err := existing.Remote(RemoteName)
		if err != nil {
			return nil, fmt.Errorf("clone %s into %s: the directory holds a repository without remote %q; remove it or choose another directory", safe, dir, RemoteName)
		}
		if urls := rem.Config().URLs; len(urls) == 0 || urls[0] != rawURL {
			return nil, fmt.Errorf("clone %s into %s: the directory holds a clone of another repository (%s); remove it or choose another directory", safe, dir, ScrubURL(strings.Join(urls, ", ")))
		}
		r, err := Open(dir)
		if err != nil {
			return nil, err
		}
		if _, err := r.Fetch(ctx, opts); err != nil {
			return r, err
		}
		return r, nil
	}
	created, err := prepareDir(dir)
	if err != nil {
		return nil, fmt.Errorf("clone %s into %s: %w", safe, dir, err)
	}
	r, err := clone(ctx, rawURL, dir, opts)
	if err != nil {
		cleanup(dir, created)
		return nil, fmt.Errorf("clone %s into %s: %w", safe, dir, err)
	}
	return r, nil
}

func clone(ctx context.Context, rawURL, dir string, opts RemoteOptions) (*Repo, error) {
	repo, err := git.PlainInit(dir, true)
	if err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	rem, err := repo.CreateRemote(&config.RemoteConfig{
		Name:  RemoteName,
		URLs:  []string{rawURL},
		Fetch: []config.RefSpec{config.RefSpec("+refs/heads/*:refs/remotes/" + RemoteName + "/*")},
	})
	if err != nil {
		return nil, fmt.Errorf("add remote: %w", err)
	}
	branch := opts.Branch
	if branch == "" {
		auth, secrets, err := authFor(rawURL, opts.Auth)
		if err != nil {
			return nil, err
		}
		refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
		if err != nil {
			return nil, explain(err, rawURL, "", opts.Auth, secrets)
		}
		for _, ref := range refs {
			if ref.Name() == plumbing.HEAD && ref.Type() == plumbing.SymbolicReference && ref.Target().IsBranch() {
				branch = ref.Target().Short()
			}
		}
		if branch == "" {
			return nil, errors.New("the remote does not say which branch its HEAD names; give the branch to follow")
		}
	}
	head := plumbing.NewSymbolicReference(plumbing.ReferenceName(RemoteRef("HEAD")), plumbing.ReferenceName(RemoteRef(branch)))
	if err := repo.Storer.SetReference(head); err != nil {
		return nil, fmt.Errorf("record the remote's branch: %w", err)
	}
	r, err := Open(dir)
	if err != nil {
		return nil, err
	}
	opts.Branch = branch
	if _, err := r.Fetch(ctx, opts); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// RemoteBranch returns the remote branch a clone made by Clone follows by
// default: the one refs/remotes/origin/HEAD names.
func (r *Repo) RemoteBranch() (string, error) {
	r.mu.Lock()
	ref, err := r.repo.Storer.Reference(plumbing.ReferenceName(RemoteRef("HEAD")))
	r.mu.Unlock()
	if err != nil || ref.Type() != plumbing.SymbolicReference {
		return "", fmt.Errorf("%s: no default remote branch recorded (%s); give the branch to follow", r.path, RemoteRef("HEAD"))
	}
	return strings.TrimPrefix(ref.Target().String(), RemoteRef("")), nil
}

// RemoteURL returns the URL of remote origin, with user information
// removed.
func (r *Repo) RemoteURL() string {
	u, _ := r.remoteURL()
	return ScrubURL(u)
}

func (r *Repo) remoteURL() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rem, err := r.repo.Remote(RemoteName)
	if err != nil {
		return "", fmt.Errorf("%s has no remote %q: not a clone made by gitflags", r.path, RemoteName)
	}
	if urls := rem.Config().URLs; len(urls) > 0 {
		return urls[0], nil
	}
	return "", fmt.Errorf("remote %q of %s has no URL", RemoteName, r.path)
}

// Fetch fetches the remote branch (opts.Branch, or the one Clone recorded)
// from remote origin into refs/remotes/origin/<branch>, following
// force-pushes, and reports whether that reference moved. Credentials are
// read from their files on every call. Nothing else is written: no local
// branch, no work tree. When the branch no longer exists on the remote,
// Fetch fails and the reference keeps its last fetched commit.
//
// Fetch is safe to call concurrently with reads of the repository; concurrent
// fetches run one after the other.
func (r *Repo) Fetch(ctx context.Context, opts RemoteOptions) (changed bool, err error) {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	rawURL, err := r.remoteURL()
	if err != nil {
		return false, err
	}
	branch := opts.Branch
	if branch == "" {
		if branch, err = r.RemoteBranch(); err != nil {
			return false, err
		}
	}
	ref := plumbing.ReferenceName(RemoteRef(branch))
	before := r.refHash(ref)

	auth, secrets, err := authFor(rawURL, opts.Auth)
	if err != nil {
		return false, fmt.Errorf("fetch %s: %w", ScrubURL(rawURL), err)
	}
	// A separate go-git repository (and storage) for fetches, so that reads
	// through r need not wait for the network. It is kept: it caches the
	// pack indexes, which are costly to load.
	if r.fetchRepo == nil {
		if r.fetchRepo, err = git.PlainOpen(r.path); err != nil {
			return false, fmt.Errorf("fetch %s: open %s: %w", ScrubURL(rawURL), r.path, err)
		}
	}
	repo := r.fetchRepo
	spec := config.RefSpec("+" + plumbing.NewBranchReferenceName(branch).String() + ":" + ref.String())
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: RemoteName,
		RefSpecs:   []config.RefSpec{spec},
		Auth:       auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		// Start afresh next time: the storage may hold a half-written state.
		_ = r.closeFetchRepo()
		return false, explain(err, rawURL, branch, opts.Auth, secrets)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Reindex() // the fetch may have written a pack
	after, err := r.readableRef(ref)
	if err != nil {
		// go-git can move the reference even when the pack it received was
		// cut short (e.g. the remote's git died on a corrupt pack): put the
		// last good commit back.
		if before != plumbing.ZeroHash {
			_ = r.repo.Storer.SetReference(plumbing.NewHashReference(ref, before))
		}
		return false, fmt.Errorf("fetch %s: the fetched branch %q cannot be read (a corrupt or incomplete pack from the remote?): %w; keeping %s",
			ScrubURL(rawURL), branch, scrub(err, secrets...), before)
	}
	return after != before, nil
}

// readableRef returns the commit ref points at after checking that the
// commit and its tree can be read. The caller holds r.mu.
func (r *Repo) readableRef(ref plumbing.ReferenceName) (plumbing.Hash, error) {
	h, err := r.repo.ResolveRevision(plumbing.Revision(ref))
	if err != nil {
		return plumbing.ZeroHash, err
	}
	c, err := r.commit(*h)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := c.Tree(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read tree of commit %s: %w", c.Hash, err)
	}
	return *h, nil
}

// closeFetchRepo closes Fetch's storage. The caller holds r.fetchMu.
func (r *Repo) closeFetchRepo() error {
	if r.fetchRepo == nil {
		return nil
	}
	var err error
	if st, ok := r.fetchRepo.Storer.(interface{ Close() error }); ok {
		err = st.Close()
	}
	r.fetchRepo = nil
	return err
}

// refHash returns the commit ref points at, or the zero hash.
func (r *Repo) refHash(name plumbing.ReferenceName) plumbing.Hash {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, err := r.repo.Storer.Reference(name)
	if err != nil {
		return plumbing.ZeroHash
	}
	return ref.Hash()
}

// Errors that Fetch and Clone wrap, for errors.Is.
var (
	// ErrBranchNotFound means the remote has no branch of the name given
	// (never had, or it was deleted).
	ErrBranchNotFound = errors.New("branch not found on the remote")
	// ErrCredentials means the remote refused the credentials (or asked for
	// some and none were given).
	ErrCredentials = errors.New("the remote refused the credentials")
)

// explain turns a go-git fetch error into a message naming the problem,
// without secrets.
func explain(err error, rawURL, branch string, auth Credentials, secrets []string) error {
	safe := ScrubURL(rawURL)
	var cause string
	var kind error
	switch {
	case errors.Is(err, git.NoMatchingRefSpecError{}):
		kind = ErrBranchNotFound
		cause = fmt.Sprintf("branch %q does not exist on the remote (deleted, renamed, or never pushed); the last fetched commit is kept", branch)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		kind = ErrCredentials
		switch {
		case auth.PasswordFile != "":
			cause = fmt.Sprintf("the remote refused the credentials read from %s (%v): check the user name and password or token, and that it may read the repository", auth.PasswordFile, err)
		default:
			cause = fmt.Sprintf("the remote asks for credentials (%v): give a credentials file", err)
		}
	case errors.Is(err, transport.ErrRepositoryNotFound):
		cause = "no repository at that URL (or no permission to see it)"
	case errors.Is(err, transport.ErrEmptyRemoteRepository) && branch != "":
		kind = ErrBranchNotFound
		cause = fmt.Sprintf("branch %q does not exist on the remote: the remote has no branches at all; the last fetched commit is kept", branch)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		cause = "the remote repository is empty: push a commit first"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		cause = fmt.Sprintf("gave up waiting for the remote: %v", err)
	default:
		cause = err.Error()
	}
	msg := ScrubURL(fmt.Sprintf("fetch %s: %s", safe, cause))
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	if kind != nil {
		return &scrubbed{msg: msg, err: errors.Join(kind, err)}
	}
	return &scrubbed{msg: msg, err: err}
}

// authFor builds the auth method for rawURL from creds, reading the secret
// files now. It also returns the secrets, to keep them out of errors.
func authFor(rawURL string, creds Credentials) (transport.AuthMethod, []string, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("not a repository URL: %w", scrub(err))
	}
	var secrets []string
	if ep.Password != "" {
		secrets = append(secrets, ep.Password, url.QueryEscape(ep.Password))
	}
	switch ep.Protocol {
	case "http", "https":
		if creds.PasswordFile == "" {
			return nil, secrets, nil
		}
		user, pass, err := readPasswordFile(creds.PasswordFile)
		if err != nil {
			return nil, secrets, err
		}
		secrets = append(secrets, pass)
		return &githttp.BasicAuth{Username: user, Password: pass}, secrets, nil
	case "ssh":
		if creds.SSHKeyFile == "" {
			return nil, secrets, nil // go-git asks the SSH agent
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		var pass string
		if creds.SSHKeyPassphraseFile != "" {
			line, err := firstLine(creds.SSHKeyPassphraseFile, "SSH key passphrase file")
			if err != nil {
				return nil, secrets, err
			}
			pass = line
			secrets = append(secrets, pass)
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, creds.SSHKeyFile, pass)
		if err != nil {
			return nil, secrets, fmt.Errorf("read SSH key %s: %w", creds.SSHKeyFile, scrub(err, secrets...))
		}
		files := []string{}
		if creds.SSHKnownHostsFile != "" {
			files = append(files, creds.SSHKnownHostsFile)
		}
		cb, err := gitssh.NewKnownHostsCallback(files...)
		if err != nil {
			return nil, secrets, fmt.Errorf("read SSH known hosts: %w", err)
		}
		keys.HostKeyCallback = cb
		return keys, secrets, nil
	default:
		return nil, secrets, nil
	}
}

// readPasswordFile reads a credentials file: "username:password" or a bare
// token on its first line.
func readPasswordFile(path string) (user, pass string, err error) {
	line, err := firstLine(path, "credentials file")
	if err != nil {
		return "", "", err
	}
	if u, p, ok := strings.Cut(line, ":"); ok {
		if u == "" || p == "" {
			return "", "", fmt.Errorf("credentials file %s: the first line must be username:password or a token; the user name or password is empty", path)
		}
		return u, p, nil
	}
	return TokenUsername, line, nil
}

// firstLine reads the trimmed first line of a secret file. Errors never
// quote the content.
func firstLine(path, what string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("%s %s: the first line is empty", what, path)
	}
	return line, nil
}

// DefaultMaxPacks is the number of packfiles above which Compact repacks.
const DefaultMaxPacks = 16

// Compact repacks all objects into one packfile when the repository holds
// more than maxPacks packfiles (DefaultMaxPacks when maxPacks <= 0), and
// reports whether it did. Every fetch that brings objects adds a packfile,
// and every read after a fetch loads the indexes of all packfiles, so a clone
// that is fetched for long must be compacted now and then; call it after a
// fetch, off the latency path. Only objects reachable from references are
// kept.
func (r *Repo) Compact(maxPacks int) (bool, error) {
	if maxPacks <= 0 {
		maxPacks = DefaultMaxPacks
	}
	packs, _ := filepath.Glob(filepath.Join(r.GitDir(), "objects", "pack", "pack-*.pack"))
	if len(packs) <= maxPacks {
		return false, nil
	}
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	repo, err := git.PlainOpen(r.path)
	if err != nil {
		return false, fmt.Errorf("compact %s: %w", r.path, err)
	}
	defer func() {
		if st, ok := repo.Storer.(interface{ Close() error }); ok {
			st.Close()
		}
	}()
	r.mu.Lock()
	defer r.mu.Unlock()
	err = repo.RepackObjects(&git.RepackConfig{})
	_ = r.closeFetchRepo() // its pack indexes are stale now
	r.st.Reindex()
	if err != nil {
		return false, fmt.Errorf("compact %s: %w", r.path, err)
	}
	return true, nil
}
