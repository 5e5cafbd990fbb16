package flagrepo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gitflags/gitflags/schemas"
)

// Limits on what a flag repository may hold.
const (
	MaxFileSize = 1 << 20 // bytes per file
	MaxFiles    = 250_000 // files per repository
)

// FileMode says what kind of tree entry a File is.
type FileMode uint8

// The kinds of tree entry. Only regular files may hold documents.
const (
	ModeRegular FileMode = iota
	ModeSymlink
	ModeSubmodule
	ModeOther
)

// File is one entry of a repository tree, as a gitstore commit or a working
// directory provides it.
type File struct {
	Path string   // slash-separated, relative to the repository root
	Mode FileMode // regular file, symlink, ...
	// Hash identifies the content (the git blob hash) when known. Load reuses
	// the parsed document of a previous snapshot when path and hash match.
	Hash string
	Size int64                  // in bytes; negative when unknown
	Read func() ([]byte, error) // reads the content
}

// fileKind classifies a path within the layout.
type fileKind uint8

const (
	kindIgnored fileKind = iota
	kindUnknown
	kindSettings
	kindFeature
	kindSegment
	kindEnvironment
	kindEnvironmentFeature
)

func (k fileKind) schema() schemas.Kind {
	switch k {
	case kindSettings:
		return schemas.Settings
	case kindFeature:
		return schemas.Feature
	case kindSegment:
		return schemas.Segment
	case kindEnvironment:
		return schemas.Environment
	case kindEnvironmentFeature:
		return schemas.EnvironmentFeature
	}
	return ""
}

const layoutHelp = "a flag repository holds gitflags.json, features/<feature>.json, segments/<segment>.json, " +
	"environments/<env>/environment.json, environments/<env>/features/<feature>.json and schemas/*.schema.json; " +
	"documentation files at the root and dot-directories such as .github/ are ignored"

// classify places a path in the layout, returning its kind, the key its name
// gives, and the environment key for environment files.
func classify(p string) (kind fileKind, key, env string) {
	parts := strings.Split(p, "/")
	if strings.HasPrefix(parts[0], ".") {
		return kindIgnored, "", ""
	}
	switch {
	case len(parts) == 1 && p == "gitflags.json":
		return kindSettings, "", ""
	case len(parts) == 1 && !strings.HasSuffix(p, ".json"):
		return kindIgnored, "", "" // README.md, CODEOWNERS, LICENSE, ...
	case len(parts) == 2 && parts[0] == "features" && strings.HasSuffix(parts[1], ".json"):
		return kindFeature, strings.TrimSuffix(parts[1], ".json"), ""
	case len(parts) == 2 && parts[0] == "segments" && strings.HasSuffix(parts[1], ".json"):
		return kindSegment, strings.TrimSuffix(parts[1], ".json"), ""
	case len(parts) == 2 && parts[0] == "schemas" && strings.HasSuffix(parts[1], ".schema.json"):
		return kindIgnored, "", ""
	case len(parts) == 3 && parts[0] == "environments" && parts[2] == "environment.json":
		return kindEnvironment, parts[1], parts[1]
	case len(parts) == 4 && parts[0] == "environments" && parts[2] == "features" && strings.HasSuffix(parts[3], ".json"):
		return kindEnvironmentFeature, strings.TrimSuffix(parts[3], ".json"), parts[1]
	case len(parts) >= 2 && parts[len(parts)-1] == "README.md":
		return kindIgnored, "", "" // a README in any directory documents it
	}
	return kindUnknown, "", ""
}

// checkKey reports why key is not a valid key, or "".
func checkKey(key string) string {
	switch {
	case key == "":
		return "empty key: the file or directory name must not be empty"
	case len(key) > MaxKeyLength:
		return fmt.Sprintf("key is %d characters long; at most %d are allowed", len(key), MaxKeyLength)
	case !KeyPattern.MatchString(key):
		return fmt.Sprintf("key %q is not valid: use letters, digits, '_', '.' and '-', starting with a letter or digit", key)
	}
	return ""
}

// cachedFile is a parsed, per-file-valid document kept for reuse on reload.
type cachedFile struct {
	hash string
	doc  any // *Settings, *Feature, *Segment, *Environment or *FeatureState
}

// parsed is the outcome of reading one file.
type parsed struct {
	file     File
	kind     fileKind
	key, env string
	doc      any
	data     []byte // nil when reused from a previous snapshot
	problems []Problem
	reused   bool
}

// Load reads files into a Snapshot of revision rev. It returns a
// *ValidationError listing every problem when the repository is invalid, and
// other errors only when a file cannot be read. When prev is not nil, files
// whose path and hash are unchanged reuse prev's parsed documents, so only
// changed files are read; cross-file checks always run on the whole tree.
func Load(rev Revision, files []File, prev *Snapshot) (*Snapshot, error) {
	if len(files) > MaxFiles {
		return nil, &ValidationError{Problems: []Problem{{File: ".", Message: fmt.Sprintf("the repository has %d files; at most %d are allowed", len(files), MaxFiles)}}}
	}
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	results := make([]parsed, len(files))
	var (
		wg      sync.WaitGroup
		next    int
		mu      sync.Mutex
		readErr error
	)
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next += 64
				mu.Unlock()
				if i >= len(files) {
					return
				}
				for j := i; j < i+64 && j < len(files); j++ {
					if err := parseFile(&results[j], files[j], prev); err != nil {
						mu.Lock()
						if readErr == nil {
							readErr = err
						}
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	snap, problems := assemble(rev, results)
	if len(problems) > 0 {
		if err := positionProblems(problems, results); err != nil {
			return nil, err
		}
		sortProblems(problems)
		return nil, &ValidationError{Problems: problems}
	}
	return snap, nil
}

// parseFile reads and checks one file on its own. It returns an error only
// when the file cannot be read; everything wrong with it is a problem.
func parseFile(r *parsed, f File, prev *Snapshot) error {
	r.file = f
	r.kind, r.key, r.env = classify(f.Path)
	c := &collector{file: f.Path}
	defer func() { r.problems = c.problems }()
	problem := c.add
	switch r.kind {
	case kindIgnored:
		return nil
	case kindUnknown:
		problem("", "unexpected file: %s", layoutHelp)
		return nil
	}
	if r.env != "" {
		if msg := checkKey(r.env); msg != "" {
			problem("", "environment directory: %s", msg)
		}
	}
	if r.kind != kindSettings && r.kind != kindEnvironment {
		if msg := checkKey(r.key); msg != "" {
			problem("", "%s", msg)
		}
	}
	switch f.Mode {
	case ModeRegular:
	case ModeSymlink:
		problem("", "symbolic links are not allowed in a flag repository: commit the file itself")
		return nil
	case ModeSubmodule:
		problem("", "submodules are not allowed in a flag repository")
		return nil
	default:
		problem("", "not a regular file")
		return nil
	}
	if len(c.problems) > 0 {
		return nil
	}
	if f.Size > MaxFileSize {
		problem("", "file is %d bytes; at most %d are allowed", f.Size, MaxFileSize)
		return nil
	}
	if prev != nil && f.Hash != "" {
		if c, ok := prev.files[f.Path]; ok && c.hash == f.Hash {
			r.doc, r.reused = c.doc, true
			return nil
		}
	}
	data, err := f.Read()
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Path, err)
	}
	if len(data) > MaxFileSize {
		problem("", "file is %d bytes; at most %d are allowed", len(data), MaxFileSize)
		return nil
	}
	r.data = data
	r.doc = decodeDocument(r.kind, data, c)
	return nil
}

// decodeDocument checks encoding, syntax and schema, then decodes the typed
// document and runs the checks that need only this file.
func decodeDocument(kind fileKind, data []byte, c *collector) any {
	problem := c.add
	if i := bytes.IndexByte(data, 0); i >= 0 {
		problem("", "binary file (NUL byte at offset %d): documents are UTF-8 JSON text", i)
		return nil
	}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		problem("", "the file starts with a UTF-8 byte order mark; save it without one")
		return nil
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		problem("@"+fmt.Sprint(off), "invalid UTF-8 at byte offset %d: documents must be UTF-8 text", off)
		return nil
	}
	var generic any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&generic); err != nil {
		problem(syntaxPointer(err, data), "%s", syntaxMessage(err))
		return nil
	}
	if _, err := d.Token(); err != io.EOF {
		problem(fmt.Sprintf("@%d", d.InputOffset()), "unexpected data after the JSON document")
		return nil
	}
	if _, ok := generic.(map[string]any); !ok {
		problem("", "expected a JSON object, found %s", jsonTypeName(generic))
		return nil
	}
	ptrs, offs := duplicateKeys(data)
	for i, p := range ptrs {
		line, col := lineCol(data, offs[i])
		c.problems = append(c.problems, Problem{File: c.file, Line: line, Column: col, Pointer: p,
			Message: fmt.Sprintf("duplicate key %q: JSON readers keep only one of them", lastToken(p))})
	}
	schema, err := schemas.Compiled(kind.schema())
	if err != nil {
		problem("", "internal error: %v", err)
		return nil
	}
	if err := schema.Validate(generic); err != nil {
		for _, p := range schemaProblems(err) {
			problem(p.Pointer, "%s", p.Message)
		}
		return nil
	}
	if len(ptrs) > 0 {
		return nil
	}
	var doc any
	switch kind {
	case kindFeature:
		doc = featureFromTree(generic.(map[string]any))
	case kindEnvironmentFeature:
		doc = featureStateFromTree(generic.(map[string]any))
	default:
		switch kind {
		case kindSettings:
			doc = new(Settings)
		case kindSegment:
			doc = new(Segment)
		case kindEnvironment:
			doc = new(Environment)
		}
		if err := json.Unmarshal(data, doc); err != nil {
			// The schema admitted something the typed document cannot hold.
			problem("", "cannot decode: %v", err)
			return nil
		}
	}
	before := len(c.problems)
	checkDocument(doc, c)
	if len(c.problems) != before {
		return nil
	}
	return doc
}

// collector gathers the problems of one file.
type collector struct {
	file     string
	problems []Problem
}

// add records a problem at a JSON pointer (or "@offset" for a byte offset).
func (c *collector) add(ptr, format string, args ...any) {
	c.problems = append(c.problems, Problem{File: c.file, Pointer: ptr, Message: fmt.Sprintf(format, args...)})
}

func lastToken(ptr string) string {
	t := splitPointer(ptr)
	if len(t) == 0 {
		return ""
	}
	return t[len(t)-1]
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// syntaxPointer turns a decoding error into a pseudo pointer "@offset" that
// positionProblems resolves to line:column.
func syntaxPointer(err error, data []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// Offset counts the bytes read, the offending one included.
		return fmt.Sprintf("@%d", max(se.Offset-1, 0))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("@%d", len(data))
	}
	return ""
}

func syntaxMessage(err error) string {
	if errors.Is(err, io.EOF) {
		return "empty file: expected a JSON object"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "invalid JSON: the document ends too early (a missing '}' or ']'?)"
	}
	return "invalid JSON: " + err.Error()
}

// positionProblems fills in line and column of every problem from its pointer.
func positionProblems(problems []Problem, results []parsed) error {
	byPath := make(map[string]*parsed, len(results))
	for i := range results {
		byPath[results[i].file.Path] = &results[i]
	}
	for i := range problems {
		p := &problems[i]
		r := byPath[p.File]
		if p.Line > 0 || r == nil || r.file.Read == nil {
			continue
		}
		if p.Pointer == "" && r.data == nil {
			continue // a problem with a file that was not read (too large, a symlink, ...)
		}
		if r.data == nil {
			if r.kind == kindIgnored || r.kind == kindUnknown || r.file.Mode != ModeRegular {
				continue
			}
			data, err := r.file.Read()
			if err != nil {
				return fmt.Errorf("read %s: %w", r.file.Path, err)
			}
			r.data = data
		}
		off := 0
		if strings.HasPrefix(p.Pointer, "@") {
			fmt.Sscan(p.Pointer[1:], &off)
			p.Pointer = ""
		} else if p.Pointer != "" {
			off = locate(r.data, p.Pointer)
		}
		p.Line, p.Column = lineCol(r.data, off)
	}
	return nil
}
