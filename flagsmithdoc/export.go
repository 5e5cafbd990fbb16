package flagsmithdoc

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/served"
)

// Export returns the Flagsmith environment document of every environment of
// snap, by environment key: exactly what the server serves at GET
// /api/v1/environment-document/ for that environment (package served builds
// both), indented for reading. updated_at is the snapshot's revision time.
func Export(snap *flagrepo.Snapshot) (map[string][]byte, error) {
	st, err := served.Build(snap, nil)
	if err != nil {
		return nil, fmt.Errorf("build the served state: %w", err)
	}
	out := map[string][]byte{}
	for _, key := range snap.EnvironmentKeys() {
		env := st.Env(key)
		if env == nil {
			return nil, fmt.Errorf("environment %s: not in the served state", key)
		}
		var raw bytes.Buffer
		if _, err := env.Document().WriteTo(&raw); err != nil {
			return nil, fmt.Errorf("environment %s: write its document: %w", key, err)
		}
		var doc bytes.Buffer
		if err := json.Indent(&doc, raw.Bytes(), "", "  "); err != nil {
			return nil, fmt.Errorf("environment %s: its document is not JSON: %w", key, err)
		}
		doc.WriteByte('\n')
		out[key] = doc.Bytes()
	}
	return out, nil
}

// ExportFileName is the file Export's document of environment key is
// written to by WriteExport.
func ExportFileName(key string) string { return key + ".json" }

// WriteExport writes documents (by environment key, as Export returns
// them) to dir, one ExportFileName file each. dir must not exist or be
// empty; nothing is left behind when writing fails.
func WriteExport(dir string, documents map[string][]byte) error {
	files := make(map[string][]byte, len(documents))
	for k, doc := range documents {
		files[ExportFileName(k)] = doc
	}
	return writeFiles(dir, files)
}
