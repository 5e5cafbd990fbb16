package changehooks

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	env := getenv(map[string]string{"HOOK_SECRET": "s3cret", "OTHER": "x"})
	hooks, err := ParseConfig(json.RawMessage(`[
		{"url": "https://hooks.example.com/flags?token=T0KEN", "secret_env": "HOOK_SECRET", "environments": ["production"]},
		{"url": "https://hooks.example.com/other", "secret_env": "OTHER"},
		{"url": "http://127.0.0.1:9000/", "secret_env": "OTHER", "name": "local"}]`), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 3 {
		t.Fatalf("%d hooks", len(hooks))
	}
	h := hooks[0]
	if h.Name != "hooks.example.com" || h.URL != "https://hooks.example.com/flags?token=T0KEN" || string(h.Secret) != "s3cret" || !slices.Equal(h.Environments, []string{"production"}) {
		t.Errorf("hook 0: %+v", h)
	}
	if hooks[1].Name != "hooks.example.com#1" || hooks[1].Environments != nil || !hooks[1].wants("staging") || h.wants("staging") || !h.wants("production") {
		t.Errorf("hook 1: %+v", hooks[1])
	}
	if hooks[2].Name != "local" {
		t.Errorf("hook 2: %+v", hooks[2])
	}
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("hook", "hook", h)
	if strings.Contains(logs.String(), "T0KEN") || strings.Contains(logs.String(), "s3cret") || !strings.Contains(logs.String(), "hooks.example.com") {
		t.Errorf("a hook logs %s", logs.String())
	}
	if hooks, err := ParseConfig(json.RawMessage(`[]`), env); err != nil || len(hooks) != 0 {
		t.Errorf("empty list: %v %v", hooks, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	env := getenv(map[string]string{"HOOK_SECRET": "s3cret"})
	for config, want := range map[string]string{
		`{"url": "https://x"}`: `change_webhooks must be an array of objects`,
		`[{"url": "https://x.example", "secret_env": "HOOK_SECRET"}, {"secret_env": "HOOK_SECRET"}]`:                                                       `change_webhooks[1].url: required`,
		`[{"url": "ftp://x.example/T0KEN", "secret_env": "HOOK_SECRET"}]`:                                                                                  `change_webhooks[0].url: must be an absolute http:// or https:// URL`,
		`[{"url": "/relative", "secret_env": "HOOK_SECRET"}]`:                                                                                              `change_webhooks[0].url: must be an absolute`,
		`[{"url": "https://x.example"}]`:                                                                                                                   `change_webhooks[0].secret_env: required`,
		`[{"url": "https://x.example", "secret_env": "MISSING"}]`:                                                                                          `change_webhooks[0].secret_env: the environment variable MISSING is not set or empty`,
		`[{"url": "https://x.example", "secret_env": "HOOK_SECRET", "secret": "s3cret"}]`:                                                                  `change_webhooks[0]: unknown field "secret" (the secret is never in the config file`,
		`[{"url": "https://x.example", "secret_env": "HOOK_SECRET", "environments": []}]`:                                                                  `change_webhooks[0].environments: empty`,
		`[{"url": "https://x.example", "secret_env": "HOOK_SECRET", "environments": ["production", "../etc"]}]`:                                            `change_webhooks[0].environments[1]: "../etc" is not an environment key`,
		`[{"url": "https://x.example", "secret_env": "HOOK_SECRET", "environments": "production"}]`:                                                        `change_webhooks[0]: cannot unmarshal string`,
		`[{"url": "https://a.example", "secret_env": "HOOK_SECRET", "name": "n"}, {"url": "https://b.example", "secret_env": "HOOK_SECRET", "name": "n"}]`: `change_webhooks[1].name: "n" is the name of change_webhooks[0] too`,
	} {
		_, err := ParseConfig(json.RawMessage(config), env)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", config, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "T0KEN")) {
			t.Errorf("%s: the error shows a secret: %v", config, err)
		}
	}
}
