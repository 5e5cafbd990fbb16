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
	"time"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/httpapi"
	"github.com/gitflags/gitflags/identities"
)

const serveHelp = `Serve the flags of a flag repository over HTTP (Flagsmith SDK API, OFREP).

With no --repo, gitflags serves its embedded default: on first start it
creates a flag repository from the built-in template under DATA/flags (git
init + first commit) and serves it; later starts serve that repository.

Every flag can also be set by an environment variable (GITFLAGS_REPO,
GITFLAGS_BRANCH, GITFLAGS_LISTEN, GITFLAGS_DATA, GITFLAGS_LOG_FORMAT) or by a
JSON config file (--config or GITFLAGS_CONFIG) with the keys "repo",
"branch", "listen", "data" and "log_format". Flags win over environment
variables, which win over the config file.`

// serveConfig is the server's configuration, from flags, environment and file.
type serveConfig struct {
	Repo      string `json:"repo"`
	Branch    string `json:"branch"`
	Listen    string `json:"listen"`
	Data      string `json:"data"`
	LogFormat string `json:"log_format"`
}

func loadServeConfig(args []string, stderr io.Writer) (serveConfig, error) {
	fs := newFlagSet("serve", "serve [--repo DIR] [--branch BRANCH] [--listen ADDR] [--data DIR] [--config FILE]", serveHelp, stderr)
	var flags serveConfig
	fs.StringVar(&flags.Repo, "repo", "", "path of a local flag repository (default: the embedded default under DATA/flags)")
	fs.StringVar(&flags.Branch, "branch", "", "branch or revision to serve (default: the repository's HEAD)")
	fs.StringVar(&flags.Listen, "listen", "", "address to listen on (default 127.0.0.1:8080)")
	fs.StringVar(&flags.Data, "data", "", "directory for server state (default .gitflags-data)")
	fs.StringVar(&flags.LogFormat, "log-format", "", "log format: text or json (default text)")
	configPath := fs.String("config", "", "JSON config file")
	if err := parseFlags(fs, args); err != nil {
		return serveConfig{}, err
	}
	if fs.NArg() > 0 {
		return serveConfig{}, usageError("serve takes no arguments (use --repo DIR)")
	}
	cfg := serveConfig{Listen: "127.0.0.1:8080", Data: ".gitflags-data", LogFormat: "text"}
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
			return cfg, usageError("config %s: %v (known keys: repo, branch, listen, data, log_format)", *configPath, err)
		}
		overlay(&cfg, file)
	}
	overlay(&cfg, serveConfig{
		Repo: os.Getenv("GITFLAGS_REPO"), Branch: os.Getenv("GITFLAGS_BRANCH"), Listen: os.Getenv("GITFLAGS_LISTEN"),
		Data: os.Getenv("GITFLAGS_DATA"), LogFormat: os.Getenv("GITFLAGS_LOG_FORMAT"),
	})
	overlay(&cfg, flags)
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return cfg, usageError("log format must be text or json, not %q", cfg.LogFormat)
	}
	return cfg, nil
}

// overlay copies the non-empty fields of src over dst.
func overlay(dst *serveConfig, src serveConfig) {
	for _, p := range []struct{ d, s *string }{
		{&dst.Repo, &src.Repo}, {&dst.Branch, &src.Branch}, {&dst.Listen, &src.Listen},
		{&dst.Data, &src.Data}, {&dst.LogFormat, &src.LogFormat},
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
	repoPath, created := cfg.Repo, false
	if repoPath == "" {
		repoPath = filepath.Join(cfg.Data, "flags")
		if _, err := os.Stat(repoPath); errors.Is(err, os.ErrNotExist) {
			if _, err := gitstore.Init(repoPath, gitflags.Template(), gitstore.DefaultAuthor()); err != nil {
				return fmt.Errorf("create the default flag repository: %w", err)
			}
			created = true
		}
	}
	repo, err := gitstore.Open(repoPath)
	if err != nil {
		return err
	}
	defer repo.Close()
	rev := cfg.Branch
	if rev == "" {
		rev = "HEAD"
	}
	snap, err := repo.Snapshot(rev, nil)
	if err != nil {
		return fmt.Errorf("load %s at %s: %w", repoPath, rev, err)
	}

	store, err := identities.Open(filepath.Join(cfg.Data, "identities.db"))
	if err != nil {
		return fmt.Errorf("identity store: %w", err)
	}
	defer store.Close()

	srv := httpapi.New(httpapi.Options{Log: log, Identities: store})
	if err := srv.Publish(snap); err != nil {
		return err
	}
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
	printBanner(stdout, "http://"+ln.Addr().String(), repoPath, created, snap)

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

// printBanner tells the user what is served and how to call it.
func printBanner(w io.Writer, base, repoPath string, created bool, snap *flagrepo.Snapshot) {
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
