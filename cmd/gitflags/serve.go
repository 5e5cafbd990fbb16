package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/gitsync"
	"github.com/gitflags/gitflags/httpapi"
	"github.com/gitflags/gitflags/identities"
)

const serveHelp = `Serve the flags of a flag repository over HTTP (Flagsmith SDK API, OFREP),
following every new commit.

--repo is a local repository (its refs are watched: commits, merges and
pulls are served at once) or a URL (https://, ssh://, git@host:path,
file://): the server clones it into DATA/remote and fetches every
--interval, and at once on POST /api/v1/sync or a signed push webhook.
With no --repo, gitflags serves its embedded default: on first start it
creates a flag repository from the built-in template under DATA/flags (git
init + first commit) and serves it; later starts serve that repository.
--watch-worktree serves the working directory, uncommitted edits included.

Secrets come only from the environment: GITFLAGS_ADMIN_TOKEN enables the
admin API (status, sync, pause, resume) and GITFLAGS_WEBHOOK_SECRET the
GitHub/GitLab webhooks. Git credentials are read from files on every fetch.

Every flag can also be set by an environment variable (GITFLAGS_REPO,
GITFLAGS_BRANCH, GITFLAGS_LISTEN, GITFLAGS_DATA, GITFLAGS_LOG_FORMAT,
GITFLAGS_INTERVAL, GITFLAGS_WATCH_WORKTREE, GITFLAGS_CREDENTIALS_FILE,
GITFLAGS_SSH_KEY, GITFLAGS_SSH_KEY_PASSPHRASE_FILE, GITFLAGS_SSH_KNOWN_HOSTS) or by a JSON config file
(--config or GITFLAGS_CONFIG) with the keys "repo", "branch", "listen",
"data", "log_format", "interval", "watch_worktree", "credentials_file",
"ssh_key", "ssh_key_passphrase_file", "ssh_known_hosts". Flags win over environment variables, which
win over the config file.`

// serveConfig is the server's configuration, from flags, environment and file.
type serveConfig struct {
	Repo            string `json:"repo"`
	Branch          string `json:"branch"`
	Listen          string `json:"listen"`
	Data            string `json:"data"`
	LogFormat       string `json:"log_format"`
	Interval        string `json:"interval"`       // a Go duration, e.g. "10s"
	WatchWorktree   string `json:"watch_worktree"` // "true" or "false"
	CredentialsFile string `json:"credentials_file"`
	SSHKey          string `json:"ssh_key"`
	SSHKnownHosts   string `json:"ssh_known_hosts"`
	SSHPassphrase   string `json:"ssh_key_passphrase_file"`
}

func loadServeConfig(args []string, stderr io.Writer) (serveConfig, error) {
	fs := newFlagSet("serve", "serve [--repo DIR] [--branch BRANCH] [--listen ADDR] [--data DIR] [--config FILE]", serveHelp, stderr)
	var flags serveConfig
	fs.StringVar(&flags.Repo, "repo", "", "path of a local flag repository (default: the embedded default under DATA/flags)")
	fs.StringVar(&flags.Branch, "branch", "", "branch or revision to serve (default: the repository's HEAD)")
	fs.StringVar(&flags.Listen, "listen", "", "address to listen on (default 127.0.0.1:8080)")
	fs.StringVar(&flags.Data, "data", "", "directory for server state (default .gitflags-data)")
	fs.StringVar(&flags.LogFormat, "log-format", "", "log format: text or json (default text)")
	fs.StringVar(&flags.Interval, "interval", "", "how often to fetch a remote (and re-check a local repository) (default 10s)")
	fs.StringVar(&flags.WatchWorktree, "watch-worktree", "", "serve the working directory with uncommitted edits: true or false (default false)")
	fs.StringVar(&flags.CredentialsFile, "credentials-file", "", "file with 'username:password' or a token for an https remote (re-read on every fetch)")
	fs.StringVar(&flags.SSHKey, "ssh-key", "", "private key file for an ssh remote")
	fs.StringVar(&flags.SSHKnownHosts, "ssh-known-hosts", "", "known_hosts file for an ssh remote")
	fs.StringVar(&flags.SSHPassphrase, "ssh-key-passphrase-file", "", "file whose first line is the passphrase of --ssh-key (re-read on every fetch)")
	configPath := fs.String("config", "", "JSON config file")
	if err := parseFlags(fs, args); err != nil {
		return serveConfig{}, err
	}
	if fs.NArg() > 0 {
		return serveConfig{}, usageError("serve takes no arguments (use --repo DIR)")
	}
	cfg := serveConfig{Listen: "127.0.0.1:8080", Data: ".gitflags-data", LogFormat: "text", Interval: "10s", WatchWorktree: "false"}
	if *configPath == "" {
		*configPath = os.Getenv("GITFLAGS_CONFIG")
	}
	if *configPath != "" {
		data, err := os.ReadFile(*configPath)
		if err != nil {
			return cfg, usageError("config: %v", err)
		}
		var file serveConfig
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return cfg, usageError("config %s: %v (known keys: repo, branch, listen, data, log_format, interval, watch_worktree, credentials_file, ssh_key, ssh_key_passphrase_file, ssh_known_hosts)", *configPath, err)
		}
		overlay(&cfg, file)
	}
	overlay(&cfg, serveConfig{
		Repo: os.Getenv("GITFLAGS_REPO"), Branch: os.Getenv("GITFLAGS_BRANCH"), Listen: os.Getenv("GITFLAGS_LISTEN"),
		Data: os.Getenv("GITFLAGS_DATA"), LogFormat: os.Getenv("GITFLAGS_LOG_FORMAT"),
		Interval: os.Getenv("GITFLAGS_INTERVAL"), WatchWorktree: os.Getenv("GITFLAGS_WATCH_WORKTREE"),
		CredentialsFile: os.Getenv("GITFLAGS_CREDENTIALS_FILE"), SSHKey: os.Getenv("GITFLAGS_SSH_KEY"),
		SSHKnownHosts: os.Getenv("GITFLAGS_SSH_KNOWN_HOSTS"), SSHPassphrase: os.Getenv("GITFLAGS_SSH_KEY_PASSPHRASE_FILE"),
	})
	overlay(&cfg, flags)
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return cfg, usageError("log format must be text or json, not %q", cfg.LogFormat)
	}
	if d, err := time.ParseDuration(cfg.Interval); err != nil || d <= 0 {
		return cfg, usageError("interval must be a positive duration such as 10s or 1m, not %q", cfg.Interval)
	}
	if _, err := strconv.ParseBool(cfg.WatchWorktree); err != nil {
		return cfg, usageError("watch-worktree must be true or false, not %q", cfg.WatchWorktree)
	}
	return cfg, nil
}

// isURL reports whether repo names a remote rather than a local path.
func isURL(repo string) bool {
	if strings.Contains(repo, "://") {
		return true
	}
	// scp-like ssh syntax: user@host:path
	at, colon := strings.Index(repo, "@"), strings.Index(repo, ":")
	return at > 0 && colon > at && !strings.ContainsAny(repo[:at], "/\\")
}

// overlay copies the non-empty fields of src over dst.
func overlay(dst *serveConfig, src serveConfig) {
	for _, p := range []struct{ d, s *string }{
		{&dst.Repo, &src.Repo}, {&dst.Branch, &src.Branch}, {&dst.Listen, &src.Listen},
		{&dst.Data, &src.Data}, {&dst.LogFormat, &src.LogFormat}, {&dst.Interval, &src.Interval},
		{&dst.WatchWorktree, &src.WatchWorktree}, {&dst.CredentialsFile, &src.CredentialsFile},
		{&dst.SSHKey, &src.SSHKey}, {&dst.SSHKnownHosts, &src.SSHKnownHosts}, {&dst.SSHPassphrase, &src.SSHPassphrase},
	} {
		if *p.s != "" {
			*p.d = *p.s
		}
	}
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadServeConfig(args, stderr)
	if err != nil {
		return err
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, nil)
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(handler)

	if err := os.MkdirAll(cfg.Data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	interval, _ := time.ParseDuration(cfg.Interval)
	watchWorktree, _ := strconv.ParseBool(cfg.WatchWorktree)
	auth := gitstore.Credentials{PasswordFile: cfg.CredentialsFile, SSHKeyFile: cfg.SSHKey, SSHKeyPassphraseFile: cfg.SSHPassphrase, SSHKnownHostsFile: cfg.SSHKnownHosts}

	repoPath, created, remote := cfg.Repo, false, isURL(cfg.Repo)
	var repo *gitstore.Repo
	switch {
	case remote:
		repoPath = filepath.Join(cfg.Data, "remote")
		var err error
		repo, err = gitstore.Clone(ctx, cfg.Repo, repoPath, gitstore.RemoteOptions{Branch: cfg.Branch, Auth: auth})
		if repo == nil {
			return fmt.Errorf("clone %s: %w", gitstore.ScrubURL(cfg.Repo), err)
		}
		if err != nil { // an earlier clone exists: serve what it has
			log.Warn("fetch failed at start; serving the last fetched revision", "error", err)
		}
	default:
		if repoPath == "" {
			repoPath = filepath.Join(cfg.Data, "flags")
			if _, err := os.Stat(repoPath); errors.Is(err, os.ErrNotExist) {
				if _, err := gitstore.Init(repoPath, gitflags.Template(), gitstore.DefaultAuthor()); err != nil {
					return fmt.Errorf("create the default flag repository: %w", err)
				}
				created = true
			}
		}
		var err error
		if repo, err = gitstore.Open(repoPath); err != nil && !watchWorktree {
			return err
		}
	}
	if repo != nil {
		defer repo.Close()
	}

	store, err := identities.Open(filepath.Join(cfg.Data, "identities.db"))
	if err != nil {
		return fmt.Errorf("identity store: %w", err)
	}
	defer store.Close()

	srv := httpapi.New(httpapi.Options{
		Log: log, Identities: store,
		AdminToken: os.Getenv("GITFLAGS_ADMIN_TOKEN"), WebhookSecret: os.Getenv("GITFLAGS_WEBHOOK_SECRET"),
	})
	sy, err := gitsync.New(gitsync.Options{
		Repo: repo, Branch: cfg.Branch, Remote: remote, Auth: auth, Interval: interval,
		WatchWorktree: watchWorktree, Dir: repoPath,
		Publish: srv.Publish, Log: log, Metrics: srv.SyncMetrics(),
	})
	if err != nil {
		return err
	}
	// The first revision is loaded before listening: a repository that is
	// invalid at start fails fast, naming every problem.
	if err := sy.Sync(ctx); err != nil && srv.Snapshot() == nil && remote {
		// The remote is unreachable but an earlier clone exists: serve the
		// last fetched revision while the Syncer keeps trying.
		if lerr := serveLastFetched(repo, cfg.Branch, srv); lerr != nil {
			return fmt.Errorf("load %s: %w (and the last fetched revision: %v)", gitstore.ScrubURL(cfg.Repo), err, lerr)
		}
		log.Warn("the remote is unreachable: serving the last fetched revision", "error", err)
	} else if err != nil && srv.Snapshot() == nil {
		return fmt.Errorf("load %s: %w", repoPath, err)
	} else if err != nil {
		log.Warn("the newest revision is not served", "error", err)
	}
	snap := srv.Snapshot()
	srv.AttachSync(sy)
	syncCtx, stopSync := context.WithCancel(ctx)
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		if err := sy.Run(syncCtx); err != nil {
			log.Error("sync stopped", "error", err)
		}
	}()
	defer func() { stopSync(); <-syncDone }()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	httpServer := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	printBanner(stdout, "http://"+ln.Addr().String(), gitstore.ScrubURL(cfg.Repo), repoPath, created, snap)

	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	return nil
}

// serveLastFetched publishes the revision an existing clone last fetched.
func serveLastFetched(repo *gitstore.Repo, branch string, srv *httpapi.Server) error {
	if branch == "" {
		b, err := repo.RemoteBranch()
		if err != nil {
			return err
		}
		branch = b
	}
	snap, err := repo.Snapshot(gitstore.RemoteRef(branch), nil)
	if err != nil {
		return err
	}
	return srv.Publish(snap)
}

// printBanner tells the user what is served and how to call it.
func printBanner(w io.Writer, base, url, repoPath string, created bool, snap *flagrepo.Snapshot) {
	if url != "" && url != repoPath {
		repoPath = url
	}
	if created {
		fmt.Fprintf(w, "Created a flag repository from the template in %s (edit it and commit, or gitflags init your own).\n", repoPath)
	}
	sha := snap.Revision.SHA
	if len(sha) > 12 {
		sha = sha[:12]
	}
	fmt.Fprintf(w, "gitflags is serving %s at %s on %s\n\nEnvironments (client keys):\n", repoPath, sha, base)
	keys := snap.EnvironmentKeys()
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-12s %s\n", k, snap.Environments[k].ClientKey)
	}
	if len(keys) > 0 {
		key := snap.Environments[keys[0]].ClientKey
		fmt.Fprintf(w, "\nTry:\n  curl -H 'X-Environment-Key: %s' %s/api/v1/flags/\n", key, base)
		fmt.Fprintf(w, "  curl -H 'X-Environment-Key: %s' -H 'Content-Type: application/json' \\\n    -d '{\"identifier\": \"alice@example.com\", \"traits\": [{\"trait_key\": \"plan\", \"trait_value\": \"pro\"}]}' %s/api/v1/identities/\n", key, base)
		fmt.Fprintf(w, "  curl -H 'Authorization: Bearer %s' -d '{\"context\": {\"targetingKey\": \"alice@example.com\"}}' %s/ofrep/v1/evaluate/flags\n", key, base)
	}
	fmt.Fprintf(w, "\nHealth: %s/healthz  Ready: %s/readyz  Press Ctrl+C to stop.\n", base, base)
}
