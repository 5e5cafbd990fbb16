package gitstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/gitflags/gitflags/repogen/gittest"
)

// sshRemote is a bare repository served by an SSH server on loopback, a work
// tree that pushes to it through the file system, and a client key the
// server accepts with a known_hosts file that lists the server.
type sshRemote struct {
	srv        *gittest.SSHServer
	key        gittest.SSHKey
	knownHosts string
	bare, work string
}

func newSSHRemote(t *testing.T) sshRemote {
	t.Helper()
	key := gittest.NewSSHKey(t)
	srv := gittest.NewSSHServer(t, key.Public) // fails the test without git
	bare, work := bareRemote(t)
	return sshRemote{srv: srv, key: key, knownHosts: srv.WriteKnownHosts(t), bare: bare, work: work}
}

func (r sshRemote) auth() Credentials {
	return Credentials{SSHKeyFile: r.key.Path, SSHKnownHostsFile: r.knownHosts}
}

// push commits a change in the work tree and pushes it to the bare
// repository, returning the commit.
func (r sshRemote) push(t *testing.T, content string) string {
	t.Helper()
	writeFiles(t, r.work, map[string]string{"README.md": content})
	sha := gittest.CommitAll(t, r.work, content)
	gittest.Run(t, r.work, "push", "-q", "origin", "main")
	return sha
}

// cloneDir is a directory for a clone that does not exist yet.
func cloneDir(t *testing.T) string {
	return filepath.Join(t.TempDir(), "clone")
}

// TestSSHCloneAndFetch clones over ssh:// with a key file and a known_hosts
// file, follows pushes, and reads the key and known hosts again on every
// fetch (a rotated key works without a restart).
func TestSSHCloneAndFetch(t *testing.T) {
	r := newSSHRemote(t)
	ctx := context.Background()
	url := r.srv.URL(r.bare)
	repo, err := Clone(ctx, url, cloneDir(t), RemoteOptions{Auth: r.auth()})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	if b, err := repo.RemoteBranch(); err != nil || b != "main" {
		t.Fatalf("RemoteBranch = %q, %v", b, err)
	}
	want := gittest.Run(t, r.bare, "rev-parse", "main")
	if h, err := repo.Resolve(RemoteRef("main")); err != nil || h.String() != want {
		t.Fatalf("Resolve = %s, %v; want %s", h, err, want)
	}
	if snap, err := repo.Snapshot(RemoteRef("main"), nil); err != nil || snap.Revision.SHA != want {
		t.Fatalf("Snapshot: %v", err)
	}
	if got := repo.RemoteURL(); got != "ssh://"+r.srv.Addr+r.bare {
		t.Errorf("RemoteURL = %q", got)
	}

	if changed, err := repo.Fetch(ctx, RemoteOptions{Auth: r.auth()}); err != nil || changed {
		t.Fatalf("Fetch with nothing new: %v, %v", changed, err)
	}
	next := r.push(t, "# over ssh\n")
	if changed, err := repo.Fetch(ctx, RemoteOptions{Auth: r.auth()}); err != nil || !changed {
		t.Fatalf("Fetch after a push: %v, %v", changed, err)
	}
	if h, _ := repo.Resolve(RemoteRef("main")); h.String() != next {
		t.Fatalf("after fetch: %s, want %s", h, next)
	}

	// The server ran git-upload-pack on the repository for user git, and
	// nothing else.
	execs := r.srv.Execs()
	if len(execs) < 3 {
		t.Fatalf("execs %+v", execs)
	}
	for _, e := range execs {
		if e.User != "git" || e.Command != "git-upload-pack '"+r.bare+"'" || e.Status != 0 {
			t.Errorf("exec %+v", e)
		}
	}

	// Key rotation: a new key in the same file, the server accepts only it.
	newKey := gittest.NewSSHKey(t)
	data, err := os.ReadFile(newKey.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.key.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r.srv.Authorize(newKey.Public)
	rotated := r.push(t, "# rotated\n")
	if changed, err := repo.Fetch(ctx, RemoteOptions{Auth: r.auth()}); err != nil || !changed {
		t.Fatalf("Fetch with the rotated key: %v, %v", changed, err)
	}
	if h, _ := repo.Resolve(RemoteRef("main")); h.String() != rotated {
		t.Fatalf("after rotation: %s, want %s", h, rotated)
	}

	// A restart: cloning into the same directory reopens it and fetches.
	repo.Close()
	again, err := Clone(ctx, url, repo.path, RemoteOptions{Auth: r.auth()})
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
}

// TestSSHPushThenFetch pushes a commit to the SSH server through
// git-receive-pack (with go-git, as a client would) and fetches it into a
// clone.
func TestSSHPushThenFetch(t *testing.T) {
	r := newSSHRemote(t)
	ctx := context.Background()
	repo, err := Clone(ctx, r.srv.URL(r.bare), cloneDir(t), RemoteOptions{Branch: "main", Auth: r.auth()})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()

	writeFiles(t, r.work, map[string]string{"README.md": "# pushed over ssh\n"})
	next := gittest.CommitAll(t, r.work, "pushed over ssh")
	work, err := git.PlainOpen(r.work)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(r.key.Private)
	if err != nil {
		t.Fatal(err)
	}
	hostKeys, err := gitssh.NewKnownHostsCallback(r.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	err = work.PushContext(ctx, &git.PushOptions{
		RemoteURL: r.srv.URL(r.bare),
		RefSpecs:  []config.RefSpec{"refs/heads/main:refs/heads/main"},
		Auth: &gitssh.PublicKeys{User: "git", Signer: signer,
			HostKeyCallbackHelper: gitssh.HostKeyCallbackHelper{HostKeyCallback: hostKeys}},
	})
	if err != nil {
		t.Fatalf("push over ssh: %v", err)
	}
	if got := gittest.Run(t, r.bare, "rev-parse", "main"); got != next {
		t.Fatalf("the bare repository's main is %s after the push, want %s", got, next)
	}
	if changed, err := repo.Fetch(ctx, RemoteOptions{Branch: "main", Auth: r.auth()}); err != nil || !changed {
		t.Fatalf("Fetch after the push: %v, %v", changed, err)
	}
	if h, _ := repo.Resolve(RemoteRef("main")); h.String() != next {
		t.Fatalf("after fetch: %s, want %s", h, next)
	}
	var pushed bool
	for _, e := range r.srv.Execs() {
		pushed = pushed || (e.Command == "git-receive-pack '"+r.bare+"'" && e.Status == 0)
	}
	if !pushed {
		t.Errorf("no git-receive-pack among %+v", r.srv.Execs())
	}
}

// TestSSHDefaultUser: an ssh:// URL without a user logs in as git, the user
// of every Git host.
func TestSSHDefaultUser(t *testing.T) {
	r := newSSHRemote(t)
	url := "ssh://" + r.srv.Addr + r.bare
	repo, err := Clone(context.Background(), url, cloneDir(t), RemoteOptions{Branch: "main", Auth: r.auth()})
	if err != nil {
		t.Fatal(err)
	}
	repo.Close()
	if e := r.srv.Execs(); len(e) != 1 || e[0].User != "git" {
		t.Fatalf("execs %+v", e)
	}
}

// TestSSHScpLikeURL clones git@host:org/remote.git, the form Git hosts
// show. The scp-like form has no port (git and go-git read
// host:2222/path as the path 2222/path on port 22), so the host name is
// an alias that an ssh_config entry maps to the server's address and port,
// as a user would configure; the relative path resolves against the
// server's home directory.
func TestSSHScpLikeURL(t *testing.T) {
	r := newSSHRemote(t)
	bare := filepath.Join(r.srv.Home, "org", "remote.git")
	gittest.Run(t, r.srv.Home, "clone", "-q", "--bare", r.bare, bare)
	saved := gitssh.DefaultSSHConfig
	gitssh.DefaultSSHConfig = sshConfig{"gitflags-test-host": {"Hostname": "127.0.0.1", "Port": strconv.Itoa(r.srv.Port)}}
	defer func() { gitssh.DefaultSSHConfig = saved }()

	url := "git@gitflags-test-host:org/remote.git"
	repo, err := Clone(context.Background(), url, cloneDir(t), RemoteOptions{Auth: r.auth()})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	want := gittest.Run(t, bare, "rev-parse", "main")
	if h, err := repo.Resolve(RemoteRef("main")); err != nil || h.String() != want {
		t.Fatalf("Resolve = %s, %v; want %s", h, err, want)
	}
	if got := repo.RemoteURL(); got != url {
		t.Errorf("RemoteURL = %q", got)
	}
	for _, e := range r.srv.Execs() {
		if e.User != "git" || e.Command != "git-upload-pack 'org/remote.git'" {
			t.Errorf("exec %+v", e)
		}
	}
}

// sshConfig is an ssh_config: host alias -> key -> value.
type sshConfig map[string]map[string]string

func (c sshConfig) Get(alias, key string) string { return c[alias][key] }

// TestSSHWrongKey: a key the server does not accept is an ErrCredentials
// that names the key file and its fingerprint, and shows no secret.
func TestSSHWrongKey(t *testing.T) {
	r := newSSHRemote(t)
	other := gittest.NewSSHKey(t)
	keyData, err := os.ReadFile(other.Path)
	if err != nil {
		t.Fatal(err)
	}
	dir := cloneDir(t)
	_, err = Clone(context.Background(), r.srv.URL(r.bare), dir, RemoteOptions{
		Branch: "main",
		Auth:   Credentials{SSHKeyFile: other.Path, SSHKnownHostsFile: r.knownHosts},
	})
	if err == nil {
		t.Fatal("a clone with a key the server refuses succeeded")
	}
	t.Log(err)
	if !errors.Is(err, ErrCredentials) {
		t.Errorf("not ErrCredentials: %v", err)
	}
	for _, want := range []string{other.Path, ssh.FingerprintSHA256(other.Public), "refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	assertNoKeyMaterial(t, err.Error(), keyData)
	if r.srv.Rejected() == 0 {
		t.Error("the server saw no key")
	}
	if len(r.srv.Execs()) != 0 {
		t.Errorf("the server ran %+v", r.srv.Execs())
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Errorf("a failed clone left %s behind", dir)
	}
}

// TestSSHNoRepository: a path with no repository on the SSH server is a
// clear error, and nothing is left behind.
func TestSSHNoRepository(t *testing.T) {
	r := newSSHRemote(t)
	dir := cloneDir(t)
	_, err := Clone(context.Background(), r.srv.URL(filepath.Join(r.srv.Home, "missing.git")), dir, RemoteOptions{Auth: r.auth()})
	if err == nil || !strings.Contains(err.Error(), "no repository at that URL") {
		t.Fatalf("clone of a missing repository: %v", err)
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Errorf("a failed clone left %s behind", dir)
	}
	if e := r.srv.Execs(); len(e) != 1 || e[0].Status == 0 {
		t.Errorf("execs %+v", e)
	}
}

// assertNoKeyMaterial fails when s holds any line of a private key file's
// base64 body.
func assertNoKeyMaterial(t *testing.T, s string, keyFile []byte) {
	t.Helper()
	for _, line := range strings.Split(string(keyFile), "\n") {
		if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(s, line) {
			t.Fatalf("the error shows the private key: %s", s)
		}
	}
}

// TestSSHHostKeyChecked: a server whose host key known_hosts does not list,
// or lists differently, is refused before any credential is offered, with
// an ErrHostKey that says what to check.
func TestSSHHostKeyChecked(t *testing.T) {
	r := newSSHRemote(t)
	_, otherHost, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, _ := ssh.NewSignerFromKey(otherHost)
	elsewhere := filepath.Join(t.TempDir(), "known_hosts")
	// Lists the right key, for another port of the same host.
	line := strings.Replace(r.srv.KnownHostsLine(), "]:"+strconv.Itoa(r.srv.Port), "]:"+strconv.Itoa(r.srv.Port+1), 1)
	if err := os.WriteFile(elsewhere, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		knownHosts string
		want       []string
	}{
		"unknown host": {elsewhere, []string{"not listed", elsewhere, ssh.FingerprintSHA256(r.srv.HostKey), "[127.0.0.1]:" + strconv.Itoa(r.srv.Port)}},
		"empty file":   {empty, []string{"not listed", empty, ssh.FingerprintSHA256(r.srv.HostKey)}},
		"mismatch": {r.srv.WriteKnownHosts(t, otherSigner.PublicKey()), []string{"does not match", ssh.FingerprintSHA256(r.srv.HostKey),
			"[127.0.0.1]:" + strconv.Itoa(r.srv.Port)}},
	} {
		t.Run(name, func(t *testing.T) {
			before := r.srv.Rejected()
			_, err := Clone(context.Background(), r.srv.URL(r.bare), cloneDir(t), RemoteOptions{
				Branch: "main",
				Auth:   Credentials{SSHKeyFile: r.key.Path, SSHKnownHostsFile: tc.knownHosts},
			})
			if err == nil {
				t.Fatal("the clone trusted an unknown host key")
			}
			t.Log(err)
			if !errors.Is(err, ErrHostKey) {
				t.Errorf("not ErrHostKey: %v", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
			if r.srv.Rejected() != before || len(r.srv.Execs()) != 0 {
				t.Errorf("the client went on after refusing the host: %d rejected keys, execs %+v", r.srv.Rejected()-before, r.srv.Execs())
			}
		})
	}
}

// TestSSHHostKeyTypes: a host with several host keys (as GitHub and GitLab
// have) is accepted when known_hosts lists any one of them; the client
// asks for that key type rather than the one it prefers.
func TestSSHHostKeyTypes(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edSigner, _ := ssh.NewSignerFromKey(edKey)
	ecSigner, _ := ssh.NewSignerFromKey(ecKey)
	key := gittest.NewSSHKey(t)
	srv := gittest.NewSSHServerWithHostKeys(t, []ssh.Signer{edSigner, ecSigner}, key.Public)
	bare, _ := bareRemote(t)
	for name, listed := range map[string][]ssh.PublicKey{
		"ed25519 only": {edSigner.PublicKey()},
		"ecdsa only":   {ecSigner.PublicKey()},
		"both":         {edSigner.PublicKey(), ecSigner.PublicKey()},
	} {
		t.Run(name, func(t *testing.T) {
			repo, err := Clone(context.Background(), srv.URL(bare), cloneDir(t), RemoteOptions{
				Branch: "main",
				Auth:   Credentials{SSHKeyFile: key.Path, SSHKnownHostsFile: srv.WriteKnownHosts(t, listed...)},
			})
			if err != nil {
				t.Fatal(err)
			}
			repo.Close()
		})
	}
}

// TestSSHKeyFiles: the key formats and passphrase cases, and the mistakes
// a user makes with key files, each with an error that names the file and
// the problem and never a secret.
func TestSSHKeyFiles(t *testing.T) {
	r := newSSHRemote(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const passphrase = gittest.SSHKeyPassphrase
	encrypted := gittest.EncryptedSSHKey(t)
	passFile := write("passphrase", []byte(passphrase+"\n"))
	wrongPassFile := write("wrong-passphrase", []byte("wrong-passphrase-77\n"))

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := write("id_ecdsa", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	ecPub, _ := ssh.NewPublicKey(&ecKey.PublicKey)
	r.srv.Authorize(r.key.Public, encrypted.Public, ecPub)
	pubFile := write("id_ed25519.pub", ssh.MarshalAuthorizedKey(r.key.Public))
	garbage := write("garbage", []byte("not a key at all\n"))

	for name, tc := range map[string]struct {
		creds Credentials
		want  []string // empty: the clone works
	}{
		"ecdsa PEM":            {creds: Credentials{SSHKeyFile: ecPEM}},
		"with passphrase":      {creds: Credentials{SSHKeyFile: encrypted.Path, SSHKeyPassphraseFile: passFile}},
		"unencrypted, no need": {creds: Credentials{SSHKeyFile: r.key.Path, SSHKeyPassphraseFile: passFile}},
		"no passphrase":        {creds: Credentials{SSHKeyFile: encrypted.Path}, want: []string{encrypted.Path, "protected by a passphrase"}},
		"wrong passphrase":     {creds: Credentials{SSHKeyFile: encrypted.Path, SSHKeyPassphraseFile: wrongPassFile}, want: []string{encrypted.Path, "passphrase", wrongPassFile}},
		"missing key file":     {creds: Credentials{SSHKeyFile: filepath.Join(dir, "missing")}, want: []string{filepath.Join(dir, "missing"), "no such file"}},
		"public key":           {creds: Credentials{SSHKeyFile: pubFile}, want: []string{pubFile, "public key"}},
		"not a key":            {creds: Credentials{SSHKeyFile: garbage}, want: []string{garbage, "not a private key"}},
		"missing known_hosts":  {creds: Credentials{SSHKeyFile: r.key.Path, SSHKnownHostsFile: filepath.Join(dir, "missing_hosts")}, want: []string{filepath.Join(dir, "missing_hosts"), "known hosts", "no such file"}},
	} {
		t.Run(name, func(t *testing.T) {
			creds := tc.creds
			if creds.SSHKnownHostsFile == "" {
				creds.SSHKnownHostsFile = r.knownHosts
			}
			dest := cloneDir(t)
			repo, err := Clone(context.Background(), r.srv.URL(r.bare), dest, RemoteOptions{Branch: "main", Auth: creds})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				repo.Close()
				return
			}
			if err == nil {
				repo.Close()
				t.Fatal("the clone succeeded")
			}
			t.Log(err)
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
			for _, secret := range []string{passphrase, "wrong-passphrase-77"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the passphrase: %v", err)
				}
			}
			keyData, _ := os.ReadFile(encrypted.Path)
			assertNoKeyMaterial(t, err.Error(), keyData)
			if _, serr := os.Stat(dest); !os.IsNotExist(serr) {
				t.Errorf("a failed clone left %s behind", dest)
			}
		})
	}
}

// TestSSHAgent: without a key file the SSH agent's keys are used, and the
// known_hosts file given is still the one checked.
func TestSSHAgent(t *testing.T) {
	r := newSSHRemote(t)
	t.Setenv("SSH_AUTH_SOCK", gittest.NewSSHAgent(t, r.key.Private))
	repo, err := Clone(context.Background(), r.srv.URL(r.bare), cloneDir(t), RemoteOptions{
		Branch: "main", Auth: Credentials{SSHKnownHostsFile: r.knownHosts},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	next := r.push(t, "# via the agent\n")
	for range 3 { // the agent connection is closed after each fetch
		if _, err := repo.Fetch(context.Background(), RemoteOptions{Auth: Credentials{SSHKnownHostsFile: r.knownHosts}}); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := repo.Resolve(RemoteRef("main")); h.String() != next {
		t.Fatalf("after fetch: %s, want %s", h, next)
	}

	// The given known_hosts file is checked with the agent too.
	_, err = repo.Fetch(context.Background(), RemoteOptions{Auth: Credentials{SSHKnownHostsFile: r.srv.WriteKnownHosts(t, gittest.NewSSHKey(t).Public)}})
	if !errors.Is(err, ErrHostKey) {
		t.Fatalf("fetch with a known_hosts file that lists another key: %v", err)
	}

	// The agent has no key the server accepts.
	t.Setenv("SSH_AUTH_SOCK", gittest.NewSSHAgent(t))
	_, err = repo.Fetch(context.Background(), RemoteOptions{Auth: Credentials{SSHKnownHostsFile: r.knownHosts}})
	if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "SSH agent") {
		t.Fatalf("fetch with an empty agent: %v", err)
	}

	// No agent and no key file.
	t.Setenv("SSH_AUTH_SOCK", "")
	_, err = repo.Fetch(context.Background(), RemoteOptions{Auth: Credentials{SSHKnownHostsFile: r.knownHosts}})
	if err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Fatalf("fetch without a key or an agent: %v", err)
	}
}

// TestSSHHostGone: a host that went away, and one that accepts connections
// but never answers, are errors within the fetch's deadline; the clone
// keeps its last fetched commit.
func TestSSHHostGone(t *testing.T) {
	r := newSSHRemote(t)
	ctx := context.Background()
	repo, err := Clone(ctx, r.srv.URL(r.bare), cloneDir(t), RemoteOptions{Branch: "main", Auth: r.auth()})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	before, _ := repo.Resolve(RemoteRef("main"))
	r.srv.Close()
	if _, err := repo.Fetch(ctx, RemoteOptions{Branch: "main", Auth: r.auth()}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("fetch from a closed server: %v", err)
	}

	// A listener on the same port that accepts and never speaks.
	ln, err := net.Listen("tcp", r.srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = repo.Fetch(tctx, RemoteOptions{Branch: "main", Auth: r.auth()})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("fetch from a silent server: %v after %v", err, time.Since(start))
	}
	t.Log(err)
	if after, _ := repo.Resolve(RemoteRef("main")); after != before {
		t.Fatalf("the ref moved to %s", after)
	}
}
