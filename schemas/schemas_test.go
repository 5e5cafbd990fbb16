package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEverySchemaCompilesAndHasItsID(t *testing.T) {
	for _, k := range Kinds {
		if _, err := Compiled(k); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		data, err := files.ReadFile(k.FileName())
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			ID     string `json:"$id"`
			Schema string `json:"$schema"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if doc.ID != k.URL() {
			t.Errorf("%s: $id %q, want %q", k, doc.ID, k.URL())
		}
		if doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %q is not draft 2020-12", k, doc.Schema)
		}
		if !strings.Contains(string(data), `"additionalProperties": false`) {
			t.Errorf("%s: objects must set additionalProperties false", k)
		}
	}
	if got := len(Names()); got != len(Kinds) {
		t.Errorf("%d schema files embedded, want %d", got, len(Kinds))
	}
}

func TestSchemaRejectsUnknownField(t *testing.T) {
	s, err := Compiled(Feature)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal([]byte(`{"id": 1, "default": {"enabled": true, "enabeld": false}}`), &v); err != nil {
		t.Fatal(err)
	}
	err = s.Validate(v)
	if err == nil || !strings.Contains(err.Error(), "enabeld") {
		t.Fatalf("want an error naming the unknown field, got %v", err)
	}
}
