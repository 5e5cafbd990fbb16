package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags/changehooks"
	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/connlimit"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/gitsync"
	"github.com/gitflags/gitflags/history"
	"github.com/gitflags/gitflags/httpapi"
	"github.com/gitflags/gitflags/identities"
	"github.com/gitflags/gitflags/previews"
	"github.com/gitflags/gitflags/tokens"
)

const serveHelp = `Serve the flags of a flag repository over HTTP (Flagsmith SDK API, OFREP),
following every new commit.

--repo is a local repository (its refs are watched: commits, merges and
pulls are served at once) or a URL (https://, ssh://, git@host:path,
file://): the server clones it into DATA/remote and fetches every
--interval, and at once on POST /api/v1/sync or a signed push webhook.
With no --repo, gitflags serves its embedded default: on first start it
creates a flag repository from the built-in template under DATA/flags (git
init + first commit, with fresh client keys) and serves it; later starts
serve that repository. --watch-worktree serves the working directory,
uncommitted edits included.

Secrets come only from the environment: GITFLAGS_ADMIN_TOKEN is one
full-access admin token (more tokens, by SHA-256 hash, in --tokens FILE)
and GITFLAGS_WEBHOOK_SECRET verifies the GitHub/GitLab webhooks. Git credentials are read from files on every fetch.`

// serveConfig is the server's configuration, from flags, environment and file.
type serveConfig struct {
	Repo            string
	Branch          string
	Listen          string
	Data            string
	LogFormat       string
	LogLevel        string
	AccessLog       bool
	Interval        time.Duration
	WatchWorktree   bool
	CredentialsFile string
	SSHKey          string
	SSHKnownHosts   string
	SSHPassphrase   string
	MaxConns        int    // request/response connections; 0: derived from the open-file limit
	MaxStreams      int    // streaming connections; 0: likewise
	StreamsPerKey   int    // streaming connections per environment key; 0: httpapi's default
	WSOrigins       string // comma-separated origin host patterns of the websocket stream; empty: any
	OfflineWrites   bool
	Tokens          string
	PreviewBranches string             // comma-separated branch patterns
	ChangeHooks     []changehooks.Hook // the config file's change_webhooks (no flag)
}

// logLevels are the values of --log-level.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// serveFlags defines serve's flags on fs, bound to cfg, whose values are the
// defaults. Each flag also has an environment variable and a config file key
// (see envName and configKey): a new setting needs only its field and its
// line here; the help's usage line and environment list follow.
func serveFlags(fs *flag.FlagSet, cfg *serveConfig) {
	fs.StringVar(&cfg.Repo, "repo", cfg.Repo, "`PATH|URL` of the flag repository: a local Git repository (watched) or a remote to clone and follow (https://, ssh://, git@host:path, file://); empty serves the embedded default under DATA/flags")
	fs.StringVar(&cfg.Branch, "branch", cfg.Branch, "`branch` to serve; empty: the repository's HEAD (a remote's default branch)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "`address` to listen on")
	fs.StringVar(&cfg.Data, "data", cfg.Data, "`directory` for server state (identities, clones, the embedded default)")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log `format`: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "least `level` logged: debug, info, warn or error")
	fs.BoolVar(&cfg.AccessLog, "access-log", cfg.AccessLog, "log one line per HTTP request (method, path without query, status, bytes, duration, remote address) (default false)")
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "how often to fetch a remote (and re-check a local repository)")
	fs.BoolVar(&cfg.WatchWorktree, "watch-worktree", cfg.WatchWorktree, "serve the working directory, uncommitted edits included (default false)")
	fs.StringVar(&cfg.CredentialsFile, "credentials-file", cfg.CredentialsFile, "`file` with 'username:password' or a token for an https remote (re-read on every fetch)")
	fs.StringVar(&cfg.SSHKey, "ssh-key", cfg.SSHKey, "private key `file` for an ssh remote")
	fs.StringVar(&cfg.SSHKnownHosts, "ssh-known-hosts", cfg.SSHKnownHosts, "known_hosts `file` for an ssh remote")
	fs.StringVar(&cfg.SSHPassphrase, "ssh-key-passphrase-file", cfg.SSHPassphrase, "`file` whose first line is the passphrase of --ssh-key (re-read on every fetch)")
	fs.BoolVar(&cfg.OfflineWrites, "offline-writes", cfg.OfflineWrites, "with a remote --repo: when the remote cannot be reached, commit admin API writes locally, serve them and push them when it answers again; without it such a write fails with 503 (default false)")
	fs.IntVar(&cfg.MaxConns, "max-connections", cfg.MaxConns, "most request/response `connections` held at once; at the cap the longest-idle one is closed for a new one (0: half of the open-file limit left after a reserve of 256, at most 8192)")
	fs.IntVar(&cfg.MaxStreams, "max-stream-connections", cfg.MaxStreams, "most streaming `connections` (SSE, websockets) held at once, apart from --max-connections (0: the rest of the open-file limit, at most 100000)")
	fs.IntVar(&cfg.StreamsPerKey, "max-streams-per-key", cfg.StreamsPerKey, "most streaming `connections` (websockets, SSE, OFREP event streams together) open at once with one environment key; past it 429 with Retry-After (0: 5000)")
	fs.StringVar(&cfg.WSOrigins, "websocket-origins", cfg.WSOrigins, "comma-separated origin host `patterns` (path.Match, e.g. 'app.example.com,*.example.com'; with :// matched against scheme://host) browsers may open the websocket stream from; the server's own host is always allowed; empty: any origin, as the SDK API's CORS")
	fs.StringVar(&cfg.PreviewBranches, "preview-branches", cfg.PreviewBranches, "comma-separated `patterns` of branches whose flags server keys with \"previews\": true may ask for (header X-Gitflags-Ref), e.g. 'gitflags/*' (one * matches any text, slashes included); admin API proposals are previewable whenever writes are on; a remote's matching branches are fetched with the served one (default none)")
	fs.StringVar(&cfg.Tokens, "tokens", cfg.Tokens, "admin tokens `file` (JSON; SHA-256 hashes only, made by 'gitflags token create'; re-read when it changes)")
}

// envName is the environment variable of a flag: GITFLAGS_LOG_FORMAT for
// log-format.
func envName(flagName string) string {
	return "GITFLAGS_" + strings.ToUpper(configKey(flagName))
}

// configKey is the config file key of a flag: log_format for log-format.
func configKey(flagName string) string {
	return strings.ReplaceAll(flagName, "-", "_")
}

func loadServeConfig(args []string, stderr io.Writer) (serveConfig, error) {
	cfg := serveConfig{Listen: "127.0.0.1:8080", Data: ".gitflags-data", LogFormat: "text", LogLevel: "info", Interval: 10 * time.Second}
	fs := newFlagSet("serve", "", serveHelp, stderr)
	serveFlags(fs, &cfg)
	configPath := fs.String("config", "", "JSON config `file`, e.g. {\"log_format\": \"json\", \"watch_worktree\": true, \"interval\": \"1m\"}")
	envs := "Every flag can also be set by an environment variable, and every flag but\n--config by a key of the JSON config file (the flag's name with '_' for '-').\nFlags win over environment variables, which win over the config file.\n"
	fs.VisitAll(func(f *flag.Flag) { envs += fmt.Sprintf("\n  %-33s --%s", envName(f.Name), f.Name) })
	fs.Usage = func() { printUsage(stderr, fs, "", serveHelp+"\n\n"+envs) }
	if err := parseFlags(fs, args); err != nil {
		return serveConfig{}, err
	}
	if a := fs.Arg(0); a == "true" || a == "false" {
		return serveConfig{}, usageError("serve takes no arguments: a boolean flag takes its value after '=' (--watch-worktree=%s)", a)
	} else if fs.NArg() > 0 {
		return serveConfig{}, usageError("serve takes no arguments (use --repo PATH|URL)")
	}
	// Precedence, lowest first: defaults, config file, environment, flags.
	cmdline := map[*flag.Flag]string{}
	fs.Visit(func(f *flag.Flag) { cmdline[f] = f.Value.String() })
	if *configPath == "" {
		*configPath = os.Getenv("GITFLAGS_CONFIG")
	}
	if *configPath != "" {
		hooks, err := applyConfigFile(fs, *configPath)
		if err == nil && hooks != nil {
			cfg.ChangeHooks, err = changehooks.ParseConfig(hooks, os.Getenv)
		}
		if err != nil {
			return cfg, usageError("config %s: %v", *configPath, err)
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v := os.Getenv(envName(f.Name)); v != "" && f.Name != "config" && err == nil {
			if serr := f.Value.Set(v); serr != nil {
				err = usageError("invalid value %q for %s: %v", v, envName(f.Name), serr)
			}
		}
	})
	if err != nil {
		return cfg, err
	}
	for f, v := range cmdline {
		if err := f.Value.Set(v); err != nil {
			return cfg, usageError("--%s: %v", f.Name, err)
		}
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return cfg, usageError("log format must be text or json, not %q", cfg.LogFormat)
	}
	if _, ok := logLevels[cfg.LogLevel]; !ok {
		return cfg, usageError("log level must be debug, info, warn or error, not %q", cfg.LogLevel)
	}
	if cfg.MaxConns < 0 || cfg.MaxStreams < 0 {
		return cfg, usageError("max-connections and max-stream-connections must be 0 (derived from the open-file limit) or more, not %d and %d", cfg.MaxConns, cfg.MaxStreams)
	}
	if cfg.StreamsPerKey < 0 {
		return cfg, usageError("max-streams-per-key must be 0 (the default, 5000) or more, not %d", cfg.StreamsPerKey)
	}
	if _, err := websocketOrigins(cfg.WSOrigins); err != nil {
		return cfg, usageError("websocket-origins: %v", err)
	}
	if cfg.Interval <= 0 {
		return cfg, usageError("interval must be a positive duration such as 10s or 1m, not %s", cfg.Interval)
	}
	return cfg, nil
}

// applyConfigFile sets the flags of fs named by the keys of the JSON object
// in path. A boolean flag takes true or false, a numeric flag a number, any
// other flag a string. It returns the value of change_webhooks (not a flag).
func applyConfigFile(fs *flag.FlagSet, path string) (hooks json.RawMessage, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	byKey := map[string]*flag.Flag{}
	var known []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			byKey[configKey(f.Name)] = f
			known = append(known, configKey(f.Name))
		}
	})
	known = append(known, changehooks.ConfigKey)
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if k == changehooks.ConfigKey {
			hooks = keys[k]
			continue
		}
		f := byKey[k]
		if f == nil {
			return nil, fmt.Errorf("unknown key %q (known keys: %s)", k, strings.Join(known, ", "))
		}
		raw, val, want := keys[k], "", "a string"
		var err error
		switch f.Value.(flag.Getter).Get().(type) {
		case bool:
			var b bool
			err, want = json.Unmarshal(raw, &b), "true or false"
			val = strconv.FormatBool(b)
		case int, int64, uint, uint64, float64:
			var n json.Number
			err, want = json.Unmarshal(raw, &n), "a number"
			val = n.String()
		default:
			err = json.Unmarshal(raw, &val)
		}
		if err != nil {
			return nil, fmt.Errorf("%q must be %s, not %s", k, want, raw)
		}
		if err := f.Value.Set(val); err != nil {
			return nil, fmt.Errorf("invalid value %s for %q: %v", raw, k, err)
		}
	}
	return hooks, nil
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

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadServeConfig(args, stderr)
	if err != nil {
		return err
	}
	logOpts := &slog.HandlerOptions{Level: logLevels[cfg.LogLevel]}
	log := slog.New(slog.NewTextHandler(stderr, logOpts))
	if cfg.LogFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, logOpts))
	}
	log.Debug("configuration", "repo", gitstore.ScrubURL(cfg.Repo), "branch", cfg.Branch, "listen", cfg.Listen, "data", cfg.Data,
		"interval", cfg.Interval, "watch_worktree", cfg.WatchWorktree, "access_log", cfg.AccessLog)

	if err := os.MkdirAll(cfg.Data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	auth := gitstore.Credentials{PasswordFile: cfg.CredentialsFile, SSHKeyFile: cfg.SSHKey, SSHKeyPassphraseFile: cfg.SSHPassphrase, SSHKnownHostsFile: cfg.SSHKnownHosts}

	repoPath, created, remote := cfg.Repo, false, isURL(cfg.Repo)
	var (
		repo     *gitstore.Repo
		cloneErr error // an earlier clone exists, but the fetch at start failed
	)
	switch {
	case remote:
		repoPath = filepath.Join(cfg.Data, "remote")
		repo, cloneErr = gitstore.Clone(ctx, cfg.Repo, repoPath, gitstore.RemoteOptions{Branch: cfg.Branch, Auth: auth})
		if repo == nil {
			return cloneErr // it names the URL and the directory
		}
	default:
		if repoPath == "" {
			repoPath = filepath.Join(cfg.Data, "flags")
			if _, err := os.Stat(repoPath); errors.Is(err, os.ErrNotExist) {
				if _, err := initFromTemplate(repoPath); err != nil {
					return fmt.Errorf("create the default flag repository: %w", err)
				}
				created = true
			}
		}
		var err error
		if repo, err = gitstore.Open(repoPath); err != nil && !cfg.WatchWorktree {
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

	var admins tokens.Chain
	if secret := os.Getenv("GITFLAGS_ADMIN_TOKEN"); secret != "" {
		admins = append(admins, tokens.Admin(secret))
	}
	if cfg.Tokens != "" {
		f, err := tokens.OpenFile(cfg.Tokens, log)
		if err != nil {
			return err
		}
		admins = append(admins, f)
	}
	var adminTokens tokens.Source // nil: the admin API is off
	if len(admins) > 0 {
		adminTokens = admins
	}
	lim := connectionLimits(cfg, log)
	hooks := changehooks.New(changehooks.Options{Hooks: cfg.ChangeHooks, Log: log})
	origins, _ := websocketOrigins(cfg.WSOrigins) // checked by loadServeConfig
	srv := httpapi.New(httpapi.Options{
		Log: log, Identities: store, Collectors: append(lim.Collectors(), hooks.Collectors()...),
		Tokens: adminTokens, WebhookSecret: os.Getenv("GITFLAGS_WEBHOOK_SECRET"),
		StreamsPerKey: cfg.StreamsPerKey, WebsocketOrigins: origins,
	})
	var served *flagrepo.Snapshot
	if cloneErr != nil {
		// Serve what the clone fetched before. The Syncer fetches again as
		// soon as it runs, and logs the error if the remote is still down.
		if served, err = lastFetched(repo, cfg.Branch); err == nil {
			err = srv.Publish(served)
		}
		if err != nil {
			return fmt.Errorf("%w; and the last fetched revision cannot be served: %v", cloneErr, err)
		}
		log.Warn("the remote did not answer at start: serving the last fetched revision until a fetch succeeds", "revision", shortSHA(served.Revision.SHA))
	}
	var writer *commits.Writer // made below, before the first sync
	var previewPatterns []string
	for _, p := range strings.Split(cfg.PreviewBranches, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if err := previews.CheckPattern(p); err != nil {
				return fmt.Errorf("--preview-branches: %w", err)
			}
			previewPatterns = append(previewPatterns, p)
		}
	}
	sy, err := gitsync.New(gitsync.Options{
		Repo: repo, Branch: cfg.Branch, Remote: remote, Auth: auth, Interval: cfg.Interval, PreviewBranches: previewPatterns,
		WatchWorktree: cfg.WatchWorktree, Dir: repoPath, Served: served,
		Publish: func(snap *flagrepo.Snapshot) error {
			prev := srv.Snapshot() // publishes are serialized by the Syncer
			if err := srv.Publish(snap); err != nil {
				return err
			}
			hooks.Notify(prev, snap) // never blocks
			return nil
		},
		Log: log, Metrics: srv.SyncMetrics(),
		Reconcile: func(ctx context.Context) (string, error) {
			if writer == nil {
				return "", nil
			}
			return writer.Reconcile(ctx)
		},
		Fetched: func(err error) {
			if writer != nil {
				writer.Fetched(err)
			}
		},
		FetchTimeout: fetchTimeout(cfg),
	})
	if err != nil {
		return err
	}
	if !cfg.WatchWorktree {
		writer, err = commits.New(commits.Options{
			Repo: repo, Sync: sy, Branch: cfg.Branch, Remote: remote, Auth: auth,
			Committer: serverCommitter(), OfflineWrites: cfg.OfflineWrites, Prepare: srv.Prepare,
		})
		if err != nil {
			log.Warn("admin API writes are off", "error", err)
		} else {
			srv.AttachWriter(writer)
		}
	}
	if len(previewPatterns) > 0 || writer != nil {
		pv, err := previews.New(previews.Options{
			Repo: repo, Patterns: previewPatterns, Proposals: writer != nil,
			Served: srv.Snapshot, Build: srv.BuildPreview,
		})
		if err != nil {
			return fmt.Errorf("--preview-branches: %w", err)
		}
		srv.AttachPreviews(pv)
	}
	// Otherwise the first revision is loaded before listening: a repository
	// that is invalid at start fails fast, naming every problem.
	if served == nil {
		if err := sy.Sync(ctx); err != nil {
			return fmt.Errorf("load %s: %w", cmp.Or(gitstore.ScrubURL(cfg.Repo), repoPath), err)
		}
	}
	snap := srv.Snapshot()
	srv.AttachSync(syncFollower{sy})
	syncCtx, stopSync := context.WithCancel(ctx)
	hooks.Start(syncCtx)
	defer hooks.Close()
	hooks.CheckEnvironments(snap)
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		if err := sy.Run(syncCtx); err != nil {
			log.Error("sync stopped", "error", err)
		}
	}()
	defer func() { stopSync(); <-syncDone }()
	if !cfg.WatchWorktree && snap != nil && snap.Revision.SHA != "" {
		// The history index is built off the request path (a long history
		// takes seconds); a query meanwhile waits for it. It is saved in the
		// data directory, one file per repository and branch, so that a
		// restart indexes only the commits since.
		key := gitstore.ScrubURL(cfg.Repo)
		if abs, err := filepath.Abs(repoPath); err == nil && !remote {
			key = abs
		}
		ix, err := history.Open(repo, cfg.Data, key+"\x00"+cfg.Branch, log)
		if err != nil {
			log.Warn("the history index cannot be saved; it is kept in memory only", "error", err)
			ix = history.New(repo)
		}
		defer ix.Close()
		srv.AttachHistory(ix)
		indexed := make(chan struct{})
		go func() {
			defer close(indexed)
			start := time.Now()
			if err := ix.Update(syncCtx, plumbing.NewHash(snap.Revision.SHA)); err != nil && syncCtx.Err() == nil {
				log.Warn("building the history index failed; GET /api/v1/history will try again", "error", err)
				return
			}
			log.Debug("history index built", "commits", ix.Len(), "duration", time.Since(start))
		}()
		defer func() { stopSync(); <-indexed }()
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	handler := srv.Handler()
	if cfg.AccessLog {
		handler = httpapi.AccessLog(handler, log)
	}
	httpServer := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         lim.ConnState,
		ConnContext:       lim.ConnContext,
	}
	printBanner(stdout, "http://"+ln.Addr().String(), gitstore.ScrubURL(cfg.Repo), repoPath, created, snap)

	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(lim.Listener(ln)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.CloseStreams() // Shutdown does not wait for event streams to end
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := srv.WaitStreams(shutdownCtx); err != nil { // their connections are hijacked: not Shutdown's
		log.Warn("shutdown", "error", err)
	}
	<-errc
	return nil
}

// websocketOrigins splits --websocket-origins into its patterns and checks
// that each is a valid path.Match pattern.
func websocketOrigins(list string) ([]string, error) {
	var out []string
	for p := range strings.SplitSeq(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%q is not a valid pattern: %v", p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// connectionLimits raises the open-file limit to its maximum and returns
// the caps on client connections, so that clients can never take the
// descriptors the server needs for itself (a crowd of idle keep-alive
// connections used to stop it answering anyone).
func connectionLimits(cfg serveConfig, log *slog.Logger) *connlimit.Limiter {
	files, err := connlimit.RaiseFileLimit()
	if err != nil {
		log.Warn("cannot raise the open-file limit", "limit", files, "error", err)
	}
	lim := connlimit.New(connlimit.Options{MaxConns: cfg.MaxConns, MaxStreams: cfg.MaxStreams, FileLimit: files})
	conns, streams := lim.Limits()
	log.Info("connection limits", "request", conns, "stream", streams, "open_files", files)
	if uint64(conns+streams) >= files {
		log.Warn("the connection limits exceed the open-file limit: the server can run out of file descriptors; lower --max-connections and --max-stream-connections or raise the limit (ulimit -n)",
			"request", conns, "stream", streams, "open_files", files)
	}
	return lim
}

// syncFollower is a gitsync.Syncer as the admin API sees it.
type syncFollower struct{ *gitsync.Syncer }

// SyncStatus is the Syncer's status.
func (f syncFollower) SyncStatus() any { return f.Status() }

// fetchTimeout bounds a fetch: with --offline-writes 15 s, so that a hanging
// remote holds writes up for no longer (they are then kept locally); else
// gitsync's default.
func fetchTimeout(cfg serveConfig) time.Duration {
	if cfg.OfflineWrites {
		return 15 * time.Second
	}
	return 0
}

// serverCommitter is the committer of the admin API's commits (their author
// is the caller): gitflags <gitflags@HOST>.
func serverCommitter() object.Signature {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return object.Signature{Name: "gitflags", Email: "gitflags@" + host}
}

// lastFetched loads the revision an existing clone fetched last.
func lastFetched(repo *gitstore.Repo, branch string) (*flagrepo.Snapshot, error) {
	if branch == "" {
		b, err := repo.RemoteBranch()
		if err != nil {
			return nil, err
		}
		branch = b
	}
	ref := gitstore.RemoteRef(branch)
	if _, err := repo.Resolve(string(commits.UnpushedRef(branch))); err == nil {
		ref = string(commits.UnpushedRef(branch)) // break-glass writes wait to be pushed: they are served
	}
	return repo.Snapshot(ref, nil)
}

// shortSHA abbreviates a commit hash to 12 hex digits.
func shortSHA(sha string) string {
	return sha[:min(12, len(sha))]
}

// printBanner tells the user what is served and how to call it.
func printBanner(w io.Writer, base, url, repoPath string, created bool, snap *flagrepo.Snapshot) {
	if url != "" && url != repoPath {
		repoPath = url
	}
	if created {
		fmt.Fprintf(w, "Created a flag repository from the template in %s (edit it and commit, or gitflags init your own).\n", repoPath)
	}
	if snap.Revision.SHA == "" {
		fmt.Fprintf(w, "gitflags is serving the working tree of %s (uncommitted edits included) on %s\n", repoPath, base)
	} else {
		fmt.Fprintf(w, "gitflags is serving %s at %s on %s\n", repoPath, shortSHA(snap.Revision.SHA), base)
	}
	fmt.Fprintf(w, "\nEnvironments (client keys):\n")
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
