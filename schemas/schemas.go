// Package schemas holds the JSON Schemas (draft 2020-12) of every file kind in a
// gitflags flag repository. They are embedded into the binary, used by the
// validator, written into new flag repositories for editors, and served over HTTP.
package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// BaseURL is the prefix of every schema's $id. The server serves the same files
// under /schemas/v1/.
const BaseURL = "https://gitflags.dev/schemas/v1/"

// Kind names one kind of file in a flag repository.
type Kind string

// The file kinds of a flag repository, each with a schema file <kind>.schema.json.
const (
	Settings           Kind = "gitflags"            // gitflags.json
	Feature            Kind = "feature"             // features/<feature>.json
	Segment            Kind = "segment"             // segments/<segment>.json
	Environment        Kind = "environment"         // environments/<env>/environment.json
	EnvironmentFeature Kind = "environment-feature" // environments/<env>/features/<feature>.json
)

// Kinds lists every file kind.
var Kinds = []Kind{Settings, Feature, Segment, Environment, EnvironmentFeature}

// FileName returns the schema's file name, e.g. "feature.schema.json".
func (k Kind) FileName() string { return string(k) + ".schema.json" }

// URL returns the schema's $id.
func (k Kind) URL() string { return BaseURL + k.FileName() }

//go:embed *.schema.json
var files embed.FS

// FS returns the schema files (flat, named <kind>.schema.json).
func FS() fs.FS { return files }

// Names returns the schema file names, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

var (
	compileOnce sync.Once
	compiled    map[Kind]*jsonschema.Schema
	compileErr  error
)

// Compiled returns the compiled schema of a kind. The schemas are compiled once,
// with every $id registered so that references resolve without a network.
func Compiled(k Kind) (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		for _, kind := range Kinds {
			data, err := files.ReadFile(kind.FileName())
			if err != nil {
				compileErr = fmt.Errorf("read schema %s: %w", kind.FileName(), err)
				return
			}
			if err := c.AddResource(kind.URL(), bytes.NewReader(data)); err != nil {
				compileErr = fmt.Errorf("add schema %s: %w", kind.FileName(), err)
				return
			}
		}
		compiled = make(map[Kind]*jsonschema.Schema, len(Kinds))
		for _, kind := range Kinds {
			s, err := c.Compile(kind.URL())
			if err != nil {
				compileErr = fmt.Errorf("compile schema %s: %w", kind.FileName(), err)
				return
			}
			compiled[kind] = s
		}
	})
	if compileErr != nil {
		return nil, compileErr
	}
	s, ok := compiled[k]
	if !ok {
		return nil, fmt.Errorf("unknown schema kind %q", k)
	}
	return s, nil
}
