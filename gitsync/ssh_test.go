package gitsync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// TestRemoteSSH follows a remote over ssh:// (a real SSH server on loopback
// running git-upload-pack) with a passphrase-protected ed25519 key and a
// known_hosts file: a push is served after Trigger; a key the server stops
// accepting is a clear error in the status while the last revision keeps
// serving, and the passphrase shows nowhere; re-authorizing the key
// recovers; a host that goes away is an error, not a stall.
func TestRemoteSSH(t *testing.T) {
	const passphrase = gittest.SSHKeyPassphrase
	key := gittest.EncryptedSSHKey(t)
	srv := gittest.NewSSHServer(t, key.Public) // fails the test without git
	r := newRemote(t)
	passFile := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(passFile, []byte(passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := gitstore.Credentials{SSHKeyFile: key.Path, SSHKeyPassphraseFile: passFile, SSHKnownHostsFile: srv.WriteKnownHosts(t)}
	repo := cloneRemote(t, srv.URL(r.bare), gitstore.RemoteOptions{Auth: auth})
	logs := &logBuffer{}
	s, rec, _ := start(t, Options{Repo: repo, Remote: true, Auth: auth, Interval: time.Hour, FetchTimeout: 5 * time.Second, Log: logs.logger()})
	first := gittest.Run(t, r.bare, "rev-parse", "main")
	waitFor(t, "the initial revision", func() bool { return rec.lastSHA() == first })
	if st := s.Status(); st.Mode != ModeRemote || st.Branch != "main" || st.Remote != "ssh://"+srv.Addr+r.bare {
		t.Fatalf("status %+v", st)
	}

	// A push, then the webhook's Trigger.
	a := r.push(t, "pushed for ssh")
	s.Trigger()
	waitFor(t, "the pushed commit", func() bool { return rec.lastSHA() == a })
	if d := description(rec.last()); d != "pushed for ssh" {
		t.Fatalf("served %q", d)
	}

	// The server no longer accepts the key.
	srv.Authorize(gittest.NewSSHKey(t).Public)
	r.push(t, "not fetched")
	err := s.Sync(context.Background())
	if !errors.Is(err, gitstore.ErrCredentials) || !strings.Contains(err.Error(), key.Path) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("refused key: %v", err)
	}
	st := s.Status()
	if st.Served.SHA != a || rec.lastSHA() != a || st.ConsecutiveFailures != 1 || !strings.Contains(st.LastError, key.Path) {
		t.Fatalf("status after a refused key %+v", st)
	}

	// Authorized again: the next trigger catches up.
	srv.Authorize(key.Public)
	b := r.push(t, "after re-authorizing")
	s.Trigger()
	waitFor(t, "recovery", func() bool { return rec.lastSHA() == b && s.Status().ConsecutiveFailures == 0 })

	// The host goes away: an error within the fetch timeout, b keeps serving.
	srv.Close()
	r.push(t, "host gone")
	start := time.Now()
	if err := s.Sync(context.Background()); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("sync with the host gone: %v after %v", err, time.Since(start))
	}
	if st := s.Status(); st.Served.SHA != b || st.ConsecutiveFailures != 1 || st.LastError == "" {
		t.Fatalf("status with the host gone %+v", st)
	}

	for what, text := range map[string]string{"the status": s.Status().LastError, "the log": logs.String()} {
		mustNotContain(t, what, text, passphrase)
		mustNotContain(t, what, text, "git@") // the URL's user information
	}
	if !strings.Contains(logs.String(), "sync failed") {
		t.Errorf("the failures were not logged:\n%s", logs)
	}
}
