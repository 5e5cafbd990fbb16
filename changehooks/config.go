package changehooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
)

// ConfigKey is the key of the change webhooks in the server's JSON config
// file.
const ConfigKey = "change_webhooks"

// Config is one change webhook as the config file writes it:
//
//	{"url": "https://hooks.example.com/flags", "secret_env": "FLAGS_HOOK_SECRET",
//	 "environments": ["production"], "name": "audit"}
//
// The secret is never in the file: secret_env names the environment variable
// that holds it. No environments means every environment. name (default: the
// URL's host) labels the webhook's metrics and logs.
type Config struct {
	URL          string   `json:"url"`
	SecretEnv    string   `json:"secret_env"`
	Environments []string `json:"environments,omitempty"`
	Name         string   `json:"name,omitempty"`
}

// Hook is a validated webhook with its secret.
type Hook struct {
	Name         string   // labels metrics and logs
	URL          string   // where deliveries are posted; never logged (it may hold a token)
	Environments []string // nil: every environment
	Secret       []byte   // the HMAC-SHA256 key
}

// LogValue keeps the URL and the secret out of logs.
func (h Hook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", h.Name), slog.Any("environments", h.Environments))
}

// wants reports whether the hook reports environment env.
func (h *Hook) wants(env string) bool {
	if h.Environments == nil {
		return true
	}
	for _, e := range h.Environments {
		if e == env {
			return true
		}
	}
	return false
}

// ParseConfig reads the value of ConfigKey in the config file (a JSON array
// of Config) and the secrets from the environment variables it names, with
// getenv. Errors name the key and the index: change_webhooks[1].url: ....
func ParseConfig(raw json.RawMessage, getenv func(string) string) ([]Hook, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s must be an array of objects such as [{\"url\": \"https://…\", \"secret_env\": \"HOOK_SECRET\", \"environments\": [\"production\"]}], not %s", ConfigKey, abbreviate(raw))
	}
	hooks := make([]Hook, 0, len(items))
	names := map[string]int{}
	for i, item := range items {
		at := fmt.Sprintf("%s[%d]", ConfigKey, i)
		var c Config
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			msg := strings.TrimPrefix(err.Error(), "json: ")
			if strings.Contains(msg, `unknown field "secret"`) {
				msg += ` (the secret is never in the config file: set "secret_env" to the name of the environment variable holding it)`
			}
			return nil, fmt.Errorf("%s: %s (fields: url, secret_env, environments, name)", at, msg)
		}
		h, err := c.hook(at, getenv)
		if err != nil {
			return nil, err
		}
		if j, dup := names[h.Name]; dup {
			if c.Name != "" {
				return nil, fmt.Errorf("%s.name: %q is the name of %s[%d] too", at, h.Name, ConfigKey, j)
			}
			h.Name = fmt.Sprintf("%s#%d", h.Name, i) // a second webhook to the same host
		}
		names[h.Name] = i
		hooks = append(hooks, h)
	}
	return hooks, nil
}

func (c *Config) hook(at string, getenv func(string) string) (Hook, error) {
	h := Hook{Name: c.Name}
	if c.URL == "" {
		return h, fmt.Errorf("%s.url: required (the address deliveries are posted to)", at)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may hold a token: name its scheme, never the URL.
		return h, fmt.Errorf("%s.url: must be an absolute http:// or https:// URL", at)
	}
	h.URL = c.URL
	if h.Name == "" {
		h.Name = u.Host
	}
	if c.SecretEnv == "" {
		return h, fmt.Errorf("%s.secret_env: required: the name of the environment variable holding the webhook's secret (deliveries are signed with it)", at)
	}
	secret := getenv(c.SecretEnv)
	if secret == "" {
		return h, fmt.Errorf("%s.secret_env: the environment variable %s is not set or empty", at, c.SecretEnv)
	}
	h.Secret = []byte(secret)
	if c.Environments != nil {
		if len(c.Environments) == 0 {
			return h, errors.New(at + ".environments: empty; leave it out to report every environment")
		}
		for j, env := range c.Environments {
			if !flagrepo.KeyPattern.MatchString(env) || len(env) > flagrepo.MaxKeyLength {
				return h, fmt.Errorf("%s.environments[%d]: %q is not an environment key (a directory name under environments/)", at, j, env)
			}
		}
		h.Environments = c.Environments
	}
	return h, nil
}

func abbreviate(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}
