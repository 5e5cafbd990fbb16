package gitstore

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
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
	// SSHKeyFile is a private key (OpenSSH format, or PEM: PKCS#1, PKCS#8,
	// SEC 1; ed25519, ECDSA or RSA) for ssh:// and scp-like (git@host:path)
	// remotes. Without it, the keys of the SSH agent (SSH_AUTH_SOCK) are
	// offered. Either way the SSH user is the URL's, else "git".
	SSHKeyFile string
	// SSHKeyPassphraseFile holds the key's passphrase on its first line, if
	// the key is encrypted.
	SSHKeyPassphraseFile string
	// SSHKnownHostsFile lists the remote's host keys in OpenSSH known_hosts
	// format. Empty means the files of the SSH_KNOWN_HOSTS environment
	// variable, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. A host
	// key that is not listed is refused (ErrHostKey); the client asks the
	// host for the key types listed for it, so listing one of a host's keys
	// is enough.
	SSHKnownHostsFile string
}

// RemoteOptions configure Clone and Fetch.
type RemoteOptions struct {
	// Branch is the remote branch to follow. Empty means the branch the
	// remote's HEAD names at clone time (recorded as refs/remotes/origin/HEAD).
	Branch string
	// Auth authenticates to the remote.
	Auth Credentials
	// AlsoBranches are more branches to fetch, by pattern (a name with at
	// most one *, which matches any text, slashes included, as in a Git
	// refspec): the preview branches. They land beside Branch, under
	// refs/remotes/origin/.
	AlsoBranches []string
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
		auth, err := authFor(ctx, rawURL, opts.Auth)
		if err != nil {
			return nil, err
		}
		refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth.method})
		auth.Close()
		if err != nil {
			return nil, explain(err, rawURL, "", opts.Auth, auth)
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

	auth, err := authFor(ctx, rawURL, opts.Auth)
	if err != nil {
		return false, fmt.Errorf("fetch %s: %w", ScrubURL(rawURL), err)
	}
	defer auth.Close()
	// A separate go-git repository (and storage) for fetches, so that reads
	// through r need not wait for the network. It is kept: it caches the
	// pack indexes, which are costly to load.
	if r.fetchRepo == nil {
		if r.fetchRepo, err = git.PlainOpen(r.path); err != nil {
			return false, fmt.Errorf("fetch %s: open %s: %w", ScrubURL(rawURL), r.path, err)
		}
	}
	repo := r.fetchRepo
	specs := []config.RefSpec{config.RefSpec("+" + plumbing.NewBranchReferenceName(branch).String() + ":" + ref.String())}
	for _, p := range opts.AlsoBranches {
		spec := config.RefSpec("+" + plumbing.NewBranchReferenceName(p).String() + ":" + RemoteRef(p))
		if err := spec.Validate(); err != nil {
			return false, fmt.Errorf("fetch %s: branch pattern %q: %w", ScrubURL(rawURL), p, err)
		}
		specs = append(specs, spec)
	}
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: RemoteName,
		RefSpecs:   specs,
		Auth:       auth.method,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		// Start afresh next time: the storage may hold a half-written state.
		_ = r.closeFetchRepo()
		return false, explain(err, rawURL, branch, opts.Auth, auth)
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
			ScrubURL(rawURL), branch, scrub(err, auth.secrets...), before)
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
	// ErrHostKey means the SSH server's host key is not in the known_hosts
	// file, or does not match the key listed there for that host.
	ErrHostKey = errors.New("the SSH host key is not trusted")
)

// explain turns a go-git fetch error into a message naming the problem,
// without secrets.
func explain(err error, rawURL, branch string, auth Credentials, used *remoteAuth) error {
	safe := ScrubURL(rawURL)
	var cause string
	var kind error
	var hostKey *hostKeyError
	switch {
	case errors.As(err, &hostKey):
		cause = hostKey.msg // err is an ErrHostKey already
	case used.sshUser != "" && sshAuthFailed(err):
		kind = ErrCredentials
		cause = fmt.Sprintf("the SSH server refused %s for user %q: check that the public key may read the repository (as a deploy key, or a key of that user's account), and the user name in the URL", used.identity, used.sshUser)
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
		// net/http's errors repeat the URL ("Get \"<url>/info/refs…\": …"),
		// which the message names already.
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err.Error()
		}
	}
	msg := ScrubURL(fmt.Sprintf("fetch %s: %s", safe, cause))
	for _, s := range used.secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	if kind != nil {
		return &scrubbed{msg: msg, err: errors.Join(kind, err)}
	}
	return &scrubbed{msg: msg, err: err}
}

// sshAuthFailed reports whether err says that the SSH server accepted none
// of the keys offered. golang.org/x/crypto/ssh has no error value for it.
func sshAuthFailed(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "ssh: unable to authenticate") || strings.Contains(msg, "Too many authentication failures")
}

// remoteAuth is how one fetch authenticates to the remote.
type remoteAuth struct {
	method  transport.AuthMethod // nil: none
	secrets []string             // to keep out of errors
	// For SSH: the user, and what is offered to the server, for messages.
	sshUser, identity string
	close             func() // releases the SSH agent connection
}

// Close releases what the auth method holds.
func (a *remoteAuth) Close() {
	if a.close != nil {
		a.close()
		a.close = nil
	}
}

// authFor builds the auth method for rawURL from creds, reading the secret
// files now; ctx bounds SSH connections made with it. Close the result
// after use.
func authFor(ctx context.Context, rawURL string, creds Credentials) (*remoteAuth, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("not a repository URL: %w", scrub(err))
	}
	a := &remoteAuth{}
	if ep.Password != "" {
		a.secrets = append(a.secrets, ep.Password, url.QueryEscape(ep.Password))
	}
	switch ep.Protocol {
	case "http", "https":
		if creds.PasswordFile == "" {
			return a, nil
		}
		user, pass, err := readPasswordFile(creds.PasswordFile)
		if err != nil {
			return nil, err
		}
		a.secrets = append(a.secrets, pass)
		a.method = &githttp.BasicAuth{Username: user, Password: pass}
		return a, nil
	case "ssh":
		if err := a.ssh(ctx, ep, creds); err != nil {
			a.Close()
			return nil, scrub(err, a.secrets...)
		}
		return a, nil
	default:
		return a, nil
	}
}

// ssh sets a up for an SSH remote: the key file's key, or else the SSH
// agent's keys, and a host key check against the known_hosts files that
// asks the host for the key types listed for it.
func (a *remoteAuth) ssh(ctx context.Context, ep *transport.Endpoint, creds Credentials) error {
	a.sshUser = ep.User
	if a.sshUser == "" {
		a.sshUser = gitssh.DefaultUsername
	}
	var method gitssh.AuthMethod
	var hostKeys *gitssh.HostKeyCallbackHelper
	if creds.SSHKeyFile != "" {
		var pass string
		if creds.SSHKeyPassphraseFile != "" {
			line, err := firstLine(creds.SSHKeyPassphraseFile, "SSH key passphrase file")
			if err != nil {
				return err
			}
			pass = line
			a.secrets = append(a.secrets, pass)
		}
		signer, err := readSSHKey(creds.SSHKeyFile, pass, creds.SSHKeyPassphraseFile)
		if err != nil {
			return err
		}
		a.identity = fmt.Sprintf("the key in %s (%s %s)", creds.SSHKeyFile, signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()))
		keys := &gitssh.PublicKeys{User: a.sshUser, Signer: signer}
		method, hostKeys = keys, &keys.HostKeyCallbackHelper
	} else {
		// go-git's own agent auth never closes its connection to the agent.
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return errors.New("no SSH key: give a private key file (--ssh-key), or run an SSH agent that holds the key (SSH_AUTH_SOCK is not set)")
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "unix", sock)
		if err != nil {
			return fmt.Errorf("no SSH key file given, and the SSH agent (SSH_AUTH_SOCK) cannot be reached: %w", err)
		}
		a.close = func() { conn.Close() }
		a.identity = fmt.Sprintf("the keys of the SSH agent at %s (SSH_AUTH_SOCK)", sock)
		keys := &gitssh.PublicKeysCallback{User: a.sshUser, Callback: agent.NewClient(conn).Signers}
		method, hostKeys = keys, &keys.HostKeyCallbackHelper
	}

	files, err := knownHostsFiles(creds.SSHKnownHostsFile)
	if err != nil {
		return err
	}
	db, err := gitssh.NewKnownHostsDb(files...)
	if err != nil {
		return fmt.Errorf("read SSH known hosts %s: %w", strings.Join(files, ", "), err)
	}
	check := db.HostKeyCallback()
	hostKeys.HostKeyCallback = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if err := check(hostname, remote, key); err != nil {
			return newHostKeyError(hostname, key, files, err)
		}
		return nil
	}
	// Without this the client asks for the key type it prefers, and a host
	// that has several (GitHub, GitLab) is refused when known_hosts lists
	// another one of its keys.
	hostKeys.HostKeyAlgorithms = db.HostKeyAlgorithms(sshAddress(ep))
	a.method = &sshAuth{AuthMethod: method, ctx: ctx}
	return nil
}

// readSSHKey reads a private key file, decrypting it with pass when it is
// encrypted. Errors name the file and the problem, never the content.
func readSSHKey(path, pass, passFile string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read SSH key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	var encrypted *ssh.PassphraseMissingError
	if errors.As(err, &encrypted) {
		if pass == "" {
			return nil, fmt.Errorf("SSH key %s is protected by a passphrase and no passphrase was given: use a key without one (e.g. a deploy key made for this server), or give no key file and load the key into an SSH agent (SSH_AUTH_SOCK)", path)
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(data, []byte(pass))
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("SSH key %s: the passphrase read from %s is wrong", path, passFile)
		}
	}
	if err != nil {
		if _, _, _, _, perr := ssh.ParseAuthorizedKey(data); perr == nil {
			return nil, fmt.Errorf("SSH key %s is a public key: give the private key file (usually the same name without .pub)", path)
		}
		return nil, fmt.Errorf("SSH key %s is not a private key in a format gitflags reads (OpenSSH, or PEM: PKCS#1, PKCS#8, SEC 1): %w", path, err)
	}
	return signer, nil
}

// knownHostsFiles returns the known_hosts files to check host keys
// against: the one given, else those of $SSH_KNOWN_HOSTS, else
// ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts, the ones that exist.
func knownHostsFiles(given string) ([]string, error) {
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return nil, fmt.Errorf("read SSH known hosts file: %w", err)
		}
		return []string{given}, nil
	}
	candidates := filepath.SplitList(os.Getenv("SSH_KNOWN_HOSTS"))
	if len(candidates) == 0 {
		if home, err := os.UserHomeDir(); err == nil {
			candidates = append(candidates, filepath.Join(home, ".ssh", "known_hosts"))
		}
		candidates = append(candidates, "/etc/ssh/ssh_known_hosts")
	}
	var found []string
	for _, f := range candidates {
		if _, err := os.Stat(f); err == nil {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no SSH known hosts file (none of %s exists): give a known_hosts file that lists the host's key (--ssh-known-hosts)", strings.Join(candidates, ", "))
	}
	return found, nil
}

// sshAddress returns the host:port go-git's SSH transport connects to for
// ep (and checks the host key of): ssh_config's Hostname and Port for the
// URL's host when there is such an entry, as go-git does.
func sshAddress(ep *transport.Endpoint) string {
	host, port := ep.Host, ep.Port
	if cfg := gitssh.DefaultSSHConfig; cfg != nil {
		if h := cfg.Get(ep.Host, "Hostname"); h != "" {
			host = h
			if p, err := strconv.Atoi(cfg.Get(ep.Host, "Port")); err == nil {
				port = p
			}
		}
	}
	if port <= 0 {
		port = gitssh.DefaultPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// hostKeyError is a refused SSH host key. Its message says what to check;
// it unwraps to ErrHostKey and the known_hosts error.
type hostKeyError struct {
	msg string
	err error
}

func (e *hostKeyError) Error() string   { return e.msg }
func (e *hostKeyError) Unwrap() []error { return []error{ErrHostKey, e.err} }

func newHostKeyError(hostname string, key ssh.PublicKey, files []string, err error) error {
	host := knownhosts.Normalize(hostname)
	presented := key.Type() + " " + ssh.FingerprintSHA256(key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	var msg string
	switch {
	case errors.As(err, &revoked):
		msg = fmt.Sprintf("the SSH host key of %s (%s) is marked @revoked in %s:%d; refusing to connect", host, presented, revoked.Revoked.Filename, revoked.Revoked.Line)
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		var listed []string
		for _, k := range keyErr.Want {
			listed = append(listed, fmt.Sprintf("%s %s at %s:%d", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		msg = fmt.Sprintf("the SSH host key of %s (%s) does not match the key known_hosts lists for it (%s): the host changed its key, or someone is intercepting the connection; check with the host's administrators before changing known_hosts",
			host, presented, strings.Join(listed, "; "))
	case errors.As(err, &keyErr):
		scan := "ssh-keyscan " + hostname
		if h, port, perr := net.SplitHostPort(hostname); perr == nil {
			scan = "ssh-keyscan " + h
			if port != strconv.Itoa(gitssh.DefaultPort) {
				scan = "ssh-keyscan -p " + port + " " + h
			}
		}
		msg = fmt.Sprintf("the SSH host key of %s (%s) is not listed in %s: check that fingerprint against the one the host publishes, then add the key (e.g. %s >> %s)",
			host, presented, strings.Join(files, ", "), scan, files[0])
	default:
		msg = fmt.Sprintf("checking the SSH host key of %s (%s) against %s: %v", host, presented, strings.Join(files, ", "), err)
	}
	return &hostKeyError{msg: msg, err: err}
}

// sshAuth is an SSH auth method bound to the context of one fetch, which
// bounds connecting: go-git's SSH transport connects without a context.
type sshAuth struct {
	gitssh.AuthMethod
	ctx context.Context
}

// ClientConfig is the wrapped method's, with the TCP connect timeout set to
// the time left before the context's deadline.
func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	if err := a.ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := a.AuthMethod.ClientConfig()
	if err != nil {
		return nil, err
	}
	if deadline, ok := a.ctx.Deadline(); ok {
		cfg.Timeout = max(time.Until(deadline), time.Millisecond)
	}
	return cfg, nil
}

func init() {
	client.InstallProtocol("ssh", sshTransport{})
}

// sshTransport is go-git's SSH transport, except that opening a session
// with an *sshAuth gives up when its context is done. go-git connects (TCP,
// SSH handshake, authentication, starting the command) without a context,
// so a server that accepts the connection and never answers would hold a
// fetch forever. The abandoned attempt ends on its own when the server
// closes the connection; a session it opens late is closed unused.
type sshTransport struct{}

func (sshTransport) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	return openSSH(ep, auth, func() (transport.UploadPackSession, error) {
		return gitssh.DefaultClient.NewUploadPackSession(ep, auth)
	})
}

func (sshTransport) NewReceivePackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.ReceivePackSession, error) {
	return openSSH(ep, auth, func() (transport.ReceivePackSession, error) {
		return gitssh.DefaultClient.NewReceivePackSession(ep, auth)
	})
}

func openSSH[S interface{ Close() error }](ep *transport.Endpoint, auth transport.AuthMethod, open func() (S, error)) (S, error) {
	a, ok := auth.(*sshAuth)
	if !ok || a.ctx.Done() == nil {
		return open()
	}
	type opened struct {
		s   S
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := open()
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		return o.s, o.err
	case <-a.ctx.Done():
		go func() {
			if o := <-done; o.err == nil {
				o.s.Close()
			}
		}()
		var zero S
		return zero, fmt.Errorf("no answer from the SSH server at %s in time: %w", sshAddress(ep), a.ctx.Err())
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
