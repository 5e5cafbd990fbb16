package flagrepo

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/schemas"
)

// TestTreeConversionMatchesDecoding checks that building features and
// feature states from the generic tree gives exactly what encoding/json
// gives when decoding the bytes into the typed documents.
func TestTreeConversionMatchesDecoding(t *testing.T) {
	docs := map[string][]byte{
		"features/edge.json":             []byte(`{"id": 7.0, "default": {"enabled": true, "value": 1.0}, "variants": [], "tags": [], "owners": ["a"], "server_key_only": false}`),
		"features/null.json":             []byte(`{"id": 8, "default": {"enabled": false, "value": null}, "variants": [{"id": 1, "key": "a", "value": null}, {"id": 2, "key": "b", "value": true, "weight": 12.5}]}`),
		"environments/e/features/a.json": []byte(`{"segment_overrides": [], "identity_overrides": [], "weights": {}}`),
		"environments/e/features/b.json": []byte(`{"enabled": false, "value": "x\\u00e9\"", "segment_overrides": [{"segment": "s", "priority": 0, "enabled": true, "value": -3, "weights": {"a": 0.5}}], "identity_overrides": [{"identifiers": ["u"], "enabled": false}]}`),
	}
	err := filepath.WalkDir(filepath.Join("..", "flags-repo-template"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join("..", "flags-repo-template"), p)
		rel = filepath.ToSlash(rel)
		if k, _, _ := classify(rel); k == kindFeature || k == kindEnvironmentFeature {
			docs[rel], err = os.ReadFile(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, data := range docs {
		kind, _, _ := classify(path)
		var generic any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if err := d.Decode(&generic); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		schema, _ := schemas.Compiled(kind.schema())
		if err := schema.Validate(generic); err != nil {
			t.Fatalf("%s is not schema-valid: %v", path, err)
		}
		var want, got any
		if kind == kindFeature {
			f := new(Feature)
			if err := json.Unmarshal(data, f); err != nil && !strings.Contains(path, "edge") {
				t.Fatalf("%s: %v", path, err)
			}
			want, got = f, featureFromTree(generic.(map[string]any))
			if strings.Contains(path, "edge") { // encoding/json cannot put 7.0 in an int64
				f.ID = 7
				f.Default = State{Enabled: true, Value: OptionalValue{Set: true, Value: json.Number("1.0")}}
				f.Variants, f.Tags, f.Owners = []Variant{}, []string{}, []string{"a"}
			}
		} else {
			st := new(FeatureState)
			if err := json.Unmarshal(data, st); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			want, got = st, featureStateFromTree(generic.(map[string]any))
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s:\n decoded   %+v\n converted %+v", path, want, got)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d documents compared", n)
	}
}
