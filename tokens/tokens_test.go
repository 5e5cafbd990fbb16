package tokens

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// entry is a valid tokens file entry for secret, with extra members.
func entry(name, secret string, extra string) string {
	return fmt.Sprintf(`{"name": %q, "email": "%s@acme.example", "sha256": %q, "scope": "write"%s}`, name, name, Hash(secret), extra)
}

func TestParseAndLookup(t *testing.T) {
	data := `{"tokens": [` +
		entry("ci-bot", "secret-ci", `, "environments": ["staging", "development"]`) + `,` +
		`{"name": "Jane Doe", "email": "jane@acme.example", "sha256": "` + strings.ToUpper(Hash("secret-jane")) + `", "scope": "read"}` +
		`]}`
	set, err := Parse("tokens.json", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Fatalf("%d tokens, want 2", set.Len())
	}
	ci, ok := set.Lookup("secret-ci")
	if !ok || ci.Name != "ci-bot" || ci.Email != "ci-bot@acme.example" || !ci.Write || ci.Scope() != "write" || strings.Join(ci.Environments, ",") != "staging,development" {
		t.Fatalf("ci-bot: %+v %v", ci, ok)
	}
	jane, ok := set.Lookup("secret-jane")
	if !ok || jane.Name != "Jane Doe" || jane.Write || jane.Scope() != "read" || jane.Environments != nil {
		t.Fatalf("Jane: %+v %v", jane, ok)
	}
	for _, wrong := range []string{"", "secret-c", "secret-ci ", Hash("secret-ci")} {
		if tok, ok := set.Lookup(wrong); ok {
			t.Errorf("Lookup(%q) = %s", wrong, tok.Name)
		}
	}
	var empty *Set
	if _, ok := empty.Lookup("x"); ok || empty.Len() != 0 {
		t.Error("a nil Set has tokens")
	}
	if set, err := Parse("t.json", []byte(`{"tokens": []}`)); err != nil || set.Len() != 0 {
		t.Errorf("no tokens: %v %v", set, err)
	}
}

func TestScopes(t *testing.T) {
	cases := []struct {
		tok                     Token
		readProd, readAll       bool
		writeProd, writeStaging bool
		writeAll                bool
	}{
		{Token{Write: true}, true, true, true, true, true},
		{Token{}, true, true, false, false, false},
		{Token{Write: true, Environments: []string{"staging"}}, false, true, false, true, false},
		{Token{Environments: []string{"staging"}}, false, true, false, false, false},
	}
	for _, c := range cases {
		got := []bool{c.tok.CanRead("production"), c.tok.CanRead(""), c.tok.CanWrite("production"), c.tok.CanWrite("staging"), c.tok.CanWrite("")}
		want := []bool{c.readProd, c.readAll, c.writeProd, c.writeStaging, c.writeAll}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%+v: CanRead(production), CanRead(\"\"), CanWrite(production), CanWrite(staging), CanWrite(\"\") = %v, want %v", c.tok, got, want)
		}
	}
}

func TestAdminAndChain(t *testing.T) {
	admin := Admin("the-admin-token")
	tok, ok := admin.Lookup("the-admin-token")
	if !ok || tok.Name != AdminName || tok.Email != AdminEmail || !tok.CanWrite("") || !tok.CanWrite("production") {
		t.Fatalf("admin: %+v %v", tok, ok)
	}
	file, err := Parse("t.json", []byte(`{"tokens": [`+entry("admin", "file-token", "")+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	chain := Chain{admin, file}
	for secret, want := range map[string]string{"the-admin-token": AdminEmail, "file-token": "admin@acme.example"} {
		if tok, ok := chain.Lookup(secret); !ok || tok.Email != want {
			t.Errorf("chain Lookup(%q) = %+v, %v; want email %s", secret, tok, ok, want)
		}
	}
	if _, ok := chain.Lookup("nope"); ok {
		t.Error("chain accepts an unknown token")
	}
	if _, ok := (Chain{}).Lookup(""); ok {
		t.Error("empty chain accepts a token")
	}
}

func TestGenerate(t *testing.T) {
	a, ha, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := Generate()
	if !regexp.MustCompile(`^gfa_[0-9a-f]{64}$`).MatchString(a) || a == b {
		t.Errorf("tokens %q, %q", a, b)
	}
	if ha != Hash(a) || len(ha) != 64 || strings.Contains(ha, a) {
		t.Errorf("hash %q of %q", ha, a)
	}
}

// TestParseProblems: every bad input is refused with its pointer and a
// message naming what is wrong.
func TestParseProblems(t *testing.T) {
	good := Hash("x")
	e := func(members string) string { return `{"tokens": [{` + members + `}]}` }
	base := `"name": "bot", "email": "bot@acme.example", "sha256": "` + good + `", "scope": "read"`
	cases := []struct {
		data, want string // want: "pointer: message part"
	}{
		{`{"tokens": [}`, `t.json:1:13: not JSON`},
		{"{\n  \"tokens\": [\n    {\"name\": }\n  ]\n}", `t.json:3:14: not JSON`},
		{"\xff", `t.json: the file is not UTF-8 text`},
		{`[]`, `t.json: the file must be a JSON object`},
		{`{}`, `t.json: no "tokens" member`},
		{`{"tokens": [], "extra": 1}`, `t.json: /extra: unknown member "extra"`},
		{`{"tokens": {}}`, `t.json: /tokens: must be an array of tokens, not {}`},
		{`{"tokens": null}`, `t.json: /tokens: must be an array of tokens, not null`},
		{`{"tokens": [1]}`, `t.json: /tokens/0: must be an object`},
		{e(base + `, "role": "x"`), `/tokens/0/role: unknown member "role"`},
		{e(`"email": "bot@acme.example", "sha256": "` + good + `", "scope": "read"`), `/tokens/0: "name" is missing`},
		{e(`"name": "bot", "sha256": "` + good + `", "scope": "read"`), `/tokens/0: "email" is missing`},
		{e(`"name": "bot", "email": "bot@acme.example", "scope": "read"`), `/tokens/0: "sha256" is missing`},
		{e(`"name": "bot", "email": "bot@acme.example", "sha256": "` + good + `"`), `/tokens/0: "scope" is missing`},
		{e(strings.Replace(base, `"bot",`, `null,`, 1)), `/tokens/0/name: must be a string, not null`},
		{e(strings.Replace(base, `"bot",`, `"",`, 1)), `/tokens/0/name: name is empty`},
		{e(strings.Replace(base, `"bot",`, `" bot",`, 1)), `/tokens/0/name: name " bot" starts or ends with a space`},
		{e(strings.Replace(base, `"bot",`, `"<bot>",`, 1)), `/tokens/0/name: name "<bot>" contains '<' or '>'`},
		{e(strings.Replace(base, `"bot",`, `"b\not",`, 1)), `/tokens/0/name: name "b\not" contains the control or invisible character U+000A`},
		{e(strings.Replace(base, `"bot",`, `"`+strings.Repeat("é", 101)+`",`, 1)), `/tokens/0/name: name has 101 characters; a token name has at most 100`},
		{e(strings.Replace(base, `"bot@acme.example"`, `"bot"`, 1)), `/tokens/0/email: email "bot" is not a bare email address`},
		{e(strings.Replace(base, `"bot@acme.example"`, `"Bot <bot@acme.example>"`, 1)), `/tokens/0/email: email "Bot <bot@acme.example>" is not a bare email address`},
		{e(strings.Replace(base, `"bot@acme.example"`, `""`, 1)), `/tokens/0/email: email is empty`},
		{e(strings.Replace(base, `"bot@acme.example"`, `7`, 1)), `/tokens/0/email: must be a string, not 7`},
		{e(strings.Replace(base, good, "zz"+good[2:], 1)), `/tokens/0/sha256: sha256 "zz` + good[2:] + `" is not a SHA-256 hash: 64 hex digits`},
		{e(strings.Replace(base, good, good[:62], 1)), `/tokens/0/sha256: sha256 "` + good[:62] + `" is not a SHA-256 hash`},
		{e(strings.Replace(base, `"read"`, `"admin"`, 1)), `/tokens/0/scope: scope "admin" is not a scope: use "read" or "write"`},
		{e(base + `, "environments": []`), `/tokens/0/environments: is empty: leave it out for a token of every environment`},
		{e(base + `, "environments": "staging"`), `/tokens/0/environments: must be an array of environment keys, not "staging"`},
		{e(base + `, "environments": ["staging", 3]`), `/tokens/0/environments/1: must be a string, not 3`},
		{e(base + `, "environments": ["../prod"]`), `/tokens/0/environments/0: environment "../prod" is not an environment key`},
		{e(base + `, "environments": ["staging", "staging"]`), `/tokens/0/environments/1: environment "staging" is listed twice`},
		{`{"tokens": [` + entry("a", "1", "") + `, ` + entry("a", "2", "") + `]}`, `/tokens/1/name: duplicate name "a": /tokens/0 has it too`},
		{`{"tokens": [` + entry("a", "1", "") + `, ` + entry("b", "1", "") + `]}`, `/tokens/1/sha256: duplicate sha256: /tokens/0 has the same hash`},
		{`{"tokens": [{"a/b~": 1}]}`, `/tokens/0/a~1b~0: unknown member "a/b~"`},
	}
	for _, c := range cases {
		set, err := Parse("t.json", []byte(c.data))
		var pe *ParseError
		if !errors.As(err, &pe) || set != nil {
			t.Errorf("%s: %v, %v; want a *ParseError", c.data, set, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n%v\nwant %s", c.data, err, c.want)
		}
		for _, p := range pe.Problems {
			if p.File != "t.json" || p.Message == "" {
				t.Errorf("%s: problem %+v", c.data, p)
			}
		}
	}
	// Every problem is reported, not only the first.
	_, err := Parse("t.json", []byte(e(`"name": "", "email": "x", "sha256": "y", "scope": "z", "extra": true`)))
	if pe := (*ParseError)(nil); !errors.As(err, &pe) || len(pe.Problems) != 5 {
		t.Errorf("five problems expected:\n%v", err)
	}
}
