package gittest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer is a Git host reached over SSH on a loopback port, for tests.
// It accepts a client that proves it holds one of the authorized keys (any
// user name), and runs the exec requests `git-upload-pack '<path>'` (fetch,
// clone) and `git-receive-pack '<path>'` (push) with the real git binary,
// as sshd and git-shell do: standard input, output and error are the SSH
// channel's, and git's exit code is sent back as the exit-status. Nothing
// else (shells, port forwarding, other commands) is allowed.
//
// Relative repository paths (as in the scp-like git@host:org/repo.git)
// resolve against Home, as against a user's home directory on a real host.
//
// The server stops when the test ends (or on Close): it closes every
// connection, kills the git processes still running and waits for all its
// goroutines, so goleak finds nothing.
type SSHServer struct {
	// Addr is the address the server listens on: 127.0.0.1 and a free port.
	Addr string
	// Port is Addr's port.
	Port int
	// HostKey is the public key of the server's first host key (a fresh
	// ed25519 key unless NewSSHServerWithHostKeys was given others).
	HostKey ssh.PublicKey
	// HostKeys are the public keys of all the server's host keys, in the
	// order given.
	HostKeys []ssh.PublicKey
	// Home is the directory git runs in: a fresh temporary directory.
	Home string

	ln     net.Listener
	config *ssh.ServerConfig
	ctx    context.Context // cancelled by Close: kills running git commands
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	mu         sync.Mutex
	authorized [][]byte // wire forms of the authorized public keys
	conns      map[net.Conn]struct{}
	execs      []Exec
	running    int // commands started and not yet in execs
	rejected   int
	closed     bool
}

// Exec is a command a client ran on an SSHServer.
type Exec struct {
	User    string // the SSH user name the client logged in as
	Command string // the command as sent, e.g. git-upload-pack '/srv/r.git'
	Status  int    // the exit status sent back
}

// NewSSHServer starts an SSHServer with a fresh ed25519 host key that
// accepts clients holding one of the authorized keys (none: every client
// is refused until Authorize). It fails tb when the git binary is missing.
func NewSSHServer(tb testing.TB, authorized ...ssh.PublicKey) *SSHServer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return NewSSHServerWithHostKeys(tb, []ssh.Signer{signer}, authorized...)
}

// NewSSHServerWithHostKeys is NewSSHServer with the given host keys (at
// least one), e.g. several of different types, as real Git hosts have.
func NewSSHServerWithHostKeys(tb testing.TB, hostKeys []ssh.Signer, authorized ...ssh.PublicKey) *SSHServer {
	tb.Helper()
	if len(hostKeys) == 0 {
		tb.Fatal("gittest.NewSSHServerWithHostKeys: no host key")
	}
	if _, err := exec.LookPath("git"); err != nil {
		tb.Fatalf("the git binary is needed to serve git over SSH: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &SSHServer{
		Addr:   ln.Addr().String(),
		Port:   ln.Addr().(*net.TCPAddr).Port,
		Home:   tb.TempDir(),
		ln:     ln,
		ctx:    ctx,
		cancel: cancel,
		conns:  map[net.Conn]struct{}{},
	}
	s.config = &ssh.ServerConfig{PublicKeyCallback: s.checkKey}
	for _, k := range hostKeys {
		s.config.AddHostKey(k)
		s.HostKeys = append(s.HostKeys, k.PublicKey())
	}
	s.HostKey = s.HostKeys[0]
	s.Authorize(authorized...)
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("closing the SSH server: %v", err)
		}
	})
	return s
}

// Authorize replaces the keys the server accepts, e.g. to rotate a key.
// Connections already made stay.
func (s *SSHServer) Authorize(keys ...ssh.PublicKey) {
	wire := make([][]byte, len(keys))
	for i, k := range keys {
		wire[i] = k.Marshal()
	}
	s.mu.Lock()
	s.authorized = wire
	s.mu.Unlock()
}

// URL returns the ssh:// URL of the repository at repoPath on this server,
// with user git: ssh://git@127.0.0.1:PORT/abs/path. A relative repoPath is
// taken as relative to Home.
func (s *SSHServer) URL(repoPath string) string {
	if !filepath.IsAbs(repoPath) {
		repoPath = filepath.Join(s.Home, repoPath)
	}
	return "ssh://git@" + s.Addr + filepath.ToSlash(repoPath)
}

// KnownHostsLine returns a known_hosts line that lists key as the host key
// of this server's address ([127.0.0.1]:PORT), or, with no key, one line per
// host key of the server. Give another key to make a line that does not
// match.
func (s *SSHServer) KnownHostsLine(keys ...ssh.PublicKey) string {
	if len(keys) == 0 {
		keys = s.HostKeys
	}
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k)
	}
	return strings.Join(lines, "\n")
}

// WriteKnownHosts writes a known_hosts file holding KnownHostsLine(keys...)
// into a fresh temporary directory and returns its path.
func (s *SSHServer) WriteKnownHosts(tb testing.TB, keys ...ssh.PublicKey) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(s.KnownHostsLine(keys...)+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Execs returns the commands clients ran, oldest first. A client can be
// done before the server has seen its command exit, so Execs first waits
// (up to 10 s) for the commands still running.
func (s *SSHServer) Execs() []Exec {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		if s.running == 0 || time.Now().After(deadline) {
			defer s.mu.Unlock()
			return append([]Exec(nil), s.execs...)
		}
		s.mu.Unlock()
	}
}

// Rejected returns how many public keys the server refused.
func (s *SSHServer) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// Close stops the server: it stops listening, closes every connection,
// kills running git commands and waits for its goroutines. It is called
// when the test ends; calling it earlier (a host that goes away) is fine.
func (s *SSHServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return err
}

func (s *SSHServer) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	wire := key.Marshal()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.authorized {
		if bytes.Equal(a, wire) {
			return &ssh.Permissions{}, nil
		}
	}
	s.rejected++
	return nil, fmt.Errorf("public key %s of user %q is not authorized", ssh.FingerprintSHA256(key), meta.User())
}

// serve accepts connections until the listener is closed.
func (s *SSHServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handleConn(c)
	}
}

// handleConn runs one SSH connection to its end.
func (s *SSHServer) handleConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	conn, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return // a refused key, a refused host key, a client that gave up
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions are allowed")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(conn.User(), ch, chReqs)
		}()
	}
	conn.Close()
	wg.Wait()
	conn.Wait()
}

// session serves one session channel: environment variables that git uses,
// then one exec request. It returns when the channel is gone.
func (s *SSHServer) session(user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	ran := false
	for req := range reqs {
		switch {
		case req.Type == "env" && !ran:
			var kv struct{ Name, Value string }
			ok := ssh.Unmarshal(req.Payload, &kv) == nil && kv.Name == "GIT_PROTOCOL"
			if ok {
				env = append(env, kv.Name+"="+kv.Value)
			}
			req.Reply(ok, nil)
		case req.Type == "exec" && !ran:
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
				req.Reply(false, nil)
				continue
			}
			ran = true
			s.mu.Lock()
			s.running++
			s.mu.Unlock()
			req.Reply(true, nil)
			status := s.run(ch, cmd.Command, env)
			s.mu.Lock()
			s.execs = append(s.execs, Exec{User: user, Command: cmd.Command, Status: status})
			s.running--
			s.mu.Unlock()
			ch.CloseWrite()
			ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(status)))
			// The session ends with its command; the loop goes on until
			// the client has seen the close.
			ch.Close()
		default: // shell, pty-req, subsystem, a second command, …
			req.Reply(false, nil)
		}
	}
}

// run runs a git command sent by a client with the channel as its standard
// streams and returns its exit status.
func (s *SSHServer) run(ch ssh.Channel, command string, env []string) int {
	service, repo, err := ParseGitCommand(command)
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "fatal: %v\n", err)
		return 128
	}
	cmd := exec.CommandContext(s.ctx, "git", strings.TrimPrefix(service, "git-"), repo)
	cmd.Dir = s.Home
	cmd.Env = append(append([]string(nil), Env...), env...)
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "fatal: %v\n", err)
		return 128
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "fatal: %v\n", err)
		return 128
	}
	// Copy the client's input until git exits; the copy ends when the
	// channel closes (the caller closes it after git exits).
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	err = cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		return exitErr.ExitCode()
	default:
		return 128
	}
}

// ParseGitCommand splits the command a Git client sends over SSH,
// `git-upload-pack '<path>'` or `git-receive-pack '<path>'`, into the
// service and the repository path, undoing the client's shell quoting (as
// git-shell does). Other commands are refused.
func ParseGitCommand(command string) (service, repo string, err error) {
	service, arg, ok := strings.Cut(command, " ")
	if !ok || (service != "git-upload-pack" && service != "git-receive-pack") {
		return "", "", fmt.Errorf("unrecognized command %q: only git-upload-pack and git-receive-pack are allowed", command)
	}
	repo, err = shellUnquote(strings.TrimSpace(arg))
	if err != nil {
		return "", "", fmt.Errorf("command %q: %w", command, err)
	}
	if repo == "" {
		return "", "", fmt.Errorf("command %q: no repository path", command)
	}
	return service, repo, nil
}

// shellUnquote undoes git's sq_quote: a single-quoted string in which a
// quote or a bang is written as quote, backslash, the character, quote
// (closing the quoted part and opening the next). An unquoted word is taken
// as is.
func shellUnquote(s string) (string, error) {
	if !strings.HasPrefix(s, "'") {
		if strings.ContainsAny(s, " '\"\\") {
			return "", errors.New("the path is neither single-quoted nor a plain word")
		}
		return s, nil
	}
	var b strings.Builder
	for i := 1; ; {
		j := strings.IndexByte(s[i:], '\'')
		if j < 0 {
			return "", errors.New("unterminated quote in the path")
		}
		b.WriteString(s[i : i+j])
		i += j + 1
		if i == len(s) {
			return b.String(), nil
		}
		// '\'' or '\!': an escaped quote or bang between two quoted parts.
		if i+3 > len(s) || s[i] != '\\' || (s[i+1] != '\'' && s[i+1] != '!') || s[i+2] != '\'' {
			return "", errors.New("bad quoting in the path")
		}
		b.WriteByte(s[i+1])
		i += 3
	}
}

// SSHKey is an ed25519 key pair whose private half is in a file, as a Git
// client reads it.
type SSHKey struct {
	// Path is the private key file (OpenSSH format, mode 0600).
	Path string
	// Public is the public key, to authorize on an SSHServer.
	Public ssh.PublicKey
	// Private is the private key, e.g. to load into an SSH agent.
	Private ed25519.PrivateKey
}

// NewSSHKey generates an ed25519 key and writes it, unencrypted, in
// OpenSSH format into a fresh temporary directory.
func NewSSHKey(tb testing.TB) SSHKey {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "gittest")
	if err != nil {
		tb.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return writeSSHKey(tb, pem.EncodeToMemory(block), sshPub, priv)
}

// SSHKeyPassphrase is the passphrase of the key EncryptedSSHKey writes.
const SSHKeyPassphrase = "correct-horse-battery"

// encryptedSSHKey is a passphrase-protected ed25519 key made for tests with
// ssh-keygen -t ed25519 -a 1 -N correct-horse-battery: a real OpenSSH key
// file, with a single bcrypt KDF round (ssh-keygen's default is 16, which
// takes seconds under the race detector). It protects nothing.
const encryptedSSHKey = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABBU6+KPIj
reGC7Nz95uEihQAAAAAQAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAID6NMsyrmFVWOS6o
DFB82IqKr2SmfJjBNKHSVvkcj2cvAAAAoGu57lo6uAro853A9HH7itI1AtanPBeEdGn+3V
3VCQdpKPpJhYinh7LXELWgGhsrA4idmSmMWHvFp/wc4VA6URaWzZ4K0QoQHd0XFH20wBB7
AU5Y6t7NLYkHXleKg0zIzNw8iTtB/VNDCG5w8nkC7R9LlmYWbtN/tCwGY/o2mzcw2jd2ML
gTMKhNk8HtZShom5kIpYUxDVuzanr2mJoJ53Y=
-----END OPENSSH PRIVATE KEY-----
`

// EncryptedSSHKey writes a fixed ed25519 key protected by SSHKeyPassphrase,
// as ssh-keygen writes it, into a fresh temporary directory. It is the same
// key every time.
func EncryptedSSHKey(tb testing.TB) SSHKey {
	tb.Helper()
	raw, err := ssh.ParseRawPrivateKeyWithPassphrase([]byte(encryptedSSHKey), []byte(SSHKeyPassphrase))
	if err != nil {
		tb.Fatal(err)
	}
	priv, ok := raw.(*ed25519.PrivateKey)
	if !ok {
		tb.Fatalf("the encrypted test key is a %T", raw)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return writeSSHKey(tb, []byte(encryptedSSHKey), pub, *priv)
}

func writeSSHKey(tb testing.TB, data []byte, pub ssh.PublicKey, priv ed25519.PrivateKey) SSHKey {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "id_ed25519")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return SSHKey{Path: p, Public: pub, Private: priv}
}

// NewSSHAgent serves an SSH agent holding keys on a Unix socket in a fresh
// temporary directory and returns the socket's path, for SSH_AUTH_SOCK. The
// agent stops when the test ends, closing the connections clients left
// open.
func NewSSHAgent(tb testing.TB, keys ...ed25519.PrivateKey) string {
	tb.Helper()
	keyring := agent.NewKeyring()
	for _, k := range keys {
		if err := keyring.Add(agent.AddedKey{PrivateKey: k, Comment: "gittest"}); err != nil {
			tb.Fatal(err)
		}
	}
	sock := filepath.Join(tb.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				agent.ServeAgent(keyring, c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return sock
}
