package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestServeStreamFlags: --max-streams-per-key and --websocket-origins come
// from flags, the environment and the config file, are checked, and reach
// the server: past the cap a stream gets 429, and a browser from another
// origin cannot open the websocket stream.
func TestServeStreamFlags(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "gitflags.json")
	load := func(file string, args ...string) (serveConfig, error) {
		t.Helper()
		if file != "" {
			if err := os.WriteFile(cfgFile, []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", cfgFile)
		}
		return loadServeConfig(args, io.Discard)
	}
	cfg, err := load("", "--max-streams-per-key", "7", "--websocket-origins", "app.example.com, *.acme.test")
	if err != nil || cfg.StreamsPerKey != 7 || cfg.WSOrigins != "app.example.com, *.acme.test" {
		t.Errorf("flags: %+v (%v)", cfg, err)
	}
	if o, err := websocketOrigins(cfg.WSOrigins); err != nil || len(o) != 2 || o[0] != "app.example.com" || o[1] != "*.acme.test" {
		t.Errorf("origins %q (%v)", o, err)
	}
	cfg, err = load(`{"max_streams_per_key": 11, "websocket_origins": "https://app.example.com"}`)
	if err != nil || cfg.StreamsPerKey != 11 || cfg.WSOrigins != "https://app.example.com" {
		t.Errorf("config file: %+v (%v)", cfg, err)
	}
	t.Setenv("GITFLAGS_MAX_STREAMS_PER_KEY", "9")
	t.Setenv("GITFLAGS_WEBSOCKET_ORIGINS", "env.example.com")
	cfg, err = load(`{"max_streams_per_key": 11}`)
	if err != nil || cfg.StreamsPerKey != 9 || cfg.WSOrigins != "env.example.com" {
		t.Errorf("environment: %+v (%v)", cfg, err)
	}
	t.Setenv("GITFLAGS_MAX_STREAMS_PER_KEY", "")
	t.Setenv("GITFLAGS_WEBSOCKET_ORIGINS", "")
	if cfg, err := load(""); err != nil || cfg.StreamsPerKey != 0 || cfg.WSOrigins != "" {
		t.Errorf("defaults: %+v (%v)", cfg, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-streams-per-key", "-1"}, "max-streams-per-key must be 0"},
		{[]string{"--websocket-origins", "ok.example.com,[bad"}, `websocket-origins: "[bad" is not a valid pattern`},
	} {
		if _, err := load("", c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}

	// Wired into the server.
	data := t.TempDir()
	s := startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--data", data, "--max-streams-per-key", "1", "--websocket-origins", "app.example.com"})
	_, key := environmentFile(t, filepath.Join(data, "flags"), "production")
	ws := "ws" + strings.TrimPrefix(s.base, "http") + "/api/v1/stream"
	dial := func(origin string) (*websocket.Conn, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"X-Environment-Key": {key}, "Origin": {origin}}})
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		return c, http.StatusSwitchingProtocols
	}
	if _, code := dial("https://evil.example.com"); code != http.StatusForbidden {
		t.Errorf("another origin: %d, want 403", code)
	}
	c, code := dial("https://app.example.com")
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("an allowed origin: %d", code)
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","version":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(msg), `{"type":"flags"`) {
		t.Fatalf("first message %s (%v)", msg, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/sse/environments/"+key+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "at most 1 at once") {
		t.Errorf("a second stream with the key: %d %s, want 429", resp.StatusCode, body)
	}
	c.Close(websocket.StatusNormalClosure, "")
}
