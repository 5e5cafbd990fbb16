package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

// scenarioNames lists the scenarios in the order they run.
var scenarioNames = []string{"flags", "identities", "ofrep-bulk", "ofrep-bulk-304", "ofrep-single"}

// target says what the scenarios ask for.
type target struct {
	key        string // client key of the environment
	flag       string // a targeted flag, for ofrep-single
	identities int    // distinct identifiers the identities scenario rotates over
}

// targetedContext matches the segments of the template repository (plan,
// lifetime_value, beta_tester, country, ...) and of repogen's repositories
// (plan, country, user_id, app_version, age, orders, email, company), so
// that evaluation walks segment rules instead of stopping at defaults.
const targetedContext = `{"targetingKey":"user-42@example.com","plan":"enterprise","lifetime_value":2500,` +
	`"beta_tester":true,"country":"DE","user_id":42,"app_version":"3.4.0","age":30,"orders":"12",` +
	`"email":"user-42@example.com","company":"acme","platform":"ios"}`

// newLoad builds the request of a scenario. etag is the ETag a first bulk
// response carried (ofrep-bulk-304 only).
func newLoad(name string, t target, etag string) (*load, error) {
	l := &load{header: http.Header{}}
	switch name {
	case "flags":
		l.method, l.path = http.MethodGet, "/api/v1/flags/"
		l.header.Set("X-Environment-Key", t.key)
	case "identities":
		l.method, l.path = http.MethodPost, "/api/v1/identities/"
		l.header.Set("X-Environment-Key", t.key)
		l.header.Set("Content-Type", "application/json")
		n := max(t.identities, 1)
		l.bodies = make([][]byte, n)
		for i := range n {
			l.bodies[i] = identityBody(i)
		}
	case "ofrep-bulk", "ofrep-bulk-304", "ofrep-single":
		l.method, l.path = http.MethodPost, "/ofrep/v1/evaluate/flags"
		if name == "ofrep-single" {
			if t.flag == "" {
				return nil, fmt.Errorf("ofrep-single needs a flag (--flag)")
			}
			l.path += "/" + t.flag
		}
		l.header.Set("Authorization", "Bearer "+t.key)
		l.header.Set("Content-Type", "application/json")
		if name == "ofrep-bulk-304" {
			if etag == "" {
				return nil, fmt.Errorf("the bulk response carries no ETag")
			}
			l.header.Set("If-None-Match", etag)
		}
		l.bodies = [][]byte{[]byte(`{"context":` + targetedContext + `}`)}
	default:
		return nil, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(scenarioNames, ", "))
	}
	return l, nil
}

var (
	plans     = []string{"free", "starter", "pro", "premium", "enterprise"}
	countries = []string{"DE", "FR", "NL", "US", "GB", "JP"}
)

// identityBody is the POST /api/v1/identities/ body of the i-th identity:
// five traits, the same ones every time for the same identifier.
func identityBody(i int) []byte {
	type trait struct {
		Key   string `json:"trait_key"`
		Value any    `json:"trait_value"`
	}
	body := struct {
		Identifier string  `json:"identifier"`
		Traits     []trait `json:"traits"`
	}{
		Identifier: fmt.Sprintf("bench-user-%05d@example.com", i),
		Traits: []trait{
			{"plan", plans[i%len(plans)]},
			{"country", countries[i%len(countries)]},
			{"user_id", i},
			{"app_version", fmt.Sprintf("%d.%d.0", 1+i%6, i%20)},
			{"beta_tester", i%3 == 0},
		},
	}
	b, _ := json.Marshal(body)
	return b
}

// probe sends the scenario's first request once and returns the response.
func probe(base string, l *load, timeout time.Duration) (*response, error) {
	var body io.Reader
	if l.bodies != nil {
		body = bytes.NewReader(l.bodies[0])
	}
	req, err := http.NewRequest(l.method, base+l.path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range l.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "gitflags-bench")
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// discover reads a flag repository's environment: its client key, and a
// flag whose state there has segment overrides (the first one, by name), or
// else the first feature.
func discover(repo fs.FS, env string) (key, flag string, err error) {
	raw, err := fs.ReadFile(repo, path.Join("environments", env, "environment.json"))
	if err != nil {
		return "", "", fmt.Errorf("environment %q: %w", env, err)
	}
	var e struct {
		ClientKey string `json:"client_key"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return "", "", fmt.Errorf("environments/%s/environment.json: %w", env, err)
	}
	if e.ClientKey == "" {
		return "", "", fmt.Errorf("environments/%s/environment.json has no client_key", env)
	}
	dir := path.Join("environments", env, "features")
	entries, _ := fs.ReadDir(repo, dir)
	names := make([]string, 0, len(entries))
	for _, de := range entries {
		if !de.IsDir() && strings.HasSuffix(de.Name(), ".json") {
			names = append(names, de.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		raw, err := fs.ReadFile(repo, path.Join(dir, n))
		if err != nil {
			continue
		}
		var st struct {
			SegmentOverrides []json.RawMessage `json:"segment_overrides"`
		}
		if json.Unmarshal(raw, &st) == nil && len(st.SegmentOverrides) > 0 {
			return e.ClientKey, strings.TrimSuffix(n, ".json"), nil
		}
	}
	features, _ := fs.ReadDir(repo, "features")
	for _, de := range features {
		if strings.HasSuffix(de.Name(), ".json") {
			return e.ClientKey, strings.TrimSuffix(de.Name(), ".json"), nil
		}
	}
	return e.ClientKey, "", nil
}
