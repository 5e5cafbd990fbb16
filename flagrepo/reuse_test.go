package flagrepo

import (
	"crypto/sha1"
	"encoding/hex"
	"reflect"
	"testing"
)

// hashedFiles turns a map of path -> content into Files whose Hash is derived
// from the content, as a git tree's blob hashes are.
func hashedFiles(m map[string]string) []File {
	files := memFiles(m)
	for i := range files {
		sum := sha1.Sum([]byte(m[files[i].Path]))
		files[i].Hash = hex.EncodeToString(sum[:])
	}
	return files
}

// TestReloadKeepsUnchangedDocuments: after a reload with prev, the documents
// of unchanged files are the same pointers, changed files give new pointers,
// and environments are new values with equal fields.
func TestReloadKeepsUnchangedDocuments(t *testing.T) {
	m := validRepo()
	m["environments/dev/features/checkout.json"] = `{"enabled": false}`
	m["environments/dev/features/limit.json"] = `{"enabled": false}`
	first, err := Load(Revision{SHA: "1"}, hashedFiles(m), nil)
	if err != nil {
		t.Fatal(err)
	}
	m["features/limit.json"] = `{"id": 11, "default": {"enabled": true, "value": 6}}`
	m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ANY", "conditions": [{"property": "email", "operator": "REGEX", "value": ".*@acme\\.example$"}]}]}`
	m["environments/dev/features/limit.json"] = `{"enabled": true}`
	second, err := Load(Revision{SHA: "2"}, hashedFiles(m), first)
	if err != nil {
		t.Fatal(err)
	}

	same := func(what string, a, b any) {
		t.Helper()
		if a != b {
			t.Errorf("%s: a new pointer, want the previous snapshot's", what)
		}
	}
	changed := func(what string, a, b any) {
		t.Helper()
		if a == b {
			t.Errorf("%s changed but kept the previous snapshot's pointer", what)
		}
	}
	same("features/checkout.json", first.Features["checkout"], second.Features["checkout"])
	changed("features/limit.json", first.Features["limit"], second.Features["limit"])
	same("segments/beta.json", first.Segments["beta"], second.Segments["beta"])
	changed("segments/staff.json", first.Segments["staff"], second.Segments["staff"])
	same("environments/prod/features/checkout.json", first.Environments["prod"].Features["checkout"], second.Environments["prod"].Features["checkout"])
	same("environments/dev/features/checkout.json", first.Environments["dev"].Features["checkout"], second.Environments["dev"].Features["checkout"])
	changed("environments/dev/features/limit.json", first.Environments["dev"].Features["limit"], second.Environments["dev"].Features["limit"])

	if v := second.Features["limit"].Default.Value.Value; v != int64(6) {
		t.Errorf("features/limit.json value %v, want 6", v)
	}
	if first.Features["limit"].Default.Value.Value != int64(5) || *first.Environments["dev"].Features["limit"].Enabled {
		t.Error("the reload changed the previous snapshot")
	}
	if k := second.Features["limit"].Key; k != "limit" {
		t.Errorf("changed feature key %q", k)
	}
	if k := second.Environments["dev"].Features["limit"].Feature; k != "limit" {
		t.Errorf("changed feature state's feature %q", k)
	}
	for _, k := range []string{"prod", "dev"} {
		a, b := *first.Environments[k], *second.Environments[k]
		if first.Environments[k] == second.Environments[k] {
			t.Errorf("environment %s: the same value in both snapshots", k)
		}
		a.Features, b.Features = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Errorf("environment %s: %+v, was %+v", k, b, a)
		}
	}
}
