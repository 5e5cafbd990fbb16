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
	if strings.HasPrefix(p, ".") {
		return kindIgnored, "", ""
	}
	dir, rest, nested := strings.Cut(p, "/")
	name := p[strings.LastIndexByte(p, '/')+1:]
	switch parts := strings.Count(p, "/") + 1; {
	case !nested && p == "gitflags.json":
		return kindSettings, "", ""
	case !nested && !strings.HasSuffix(p, ".json"):
		return kindIgnored, "", "" // README.md, CODEOWNERS, LICENSE, ...
	case parts == 2 && dir == "features" && strings.HasSuffix(name, ".json"):
		return kindFeature, strings.TrimSuffix(name, ".json"), ""
	case parts == 2 && dir == "segments" && strings.HasSuffix(name, ".json"):
		return kindSegment, strings.TrimSuffix(name, ".json"), ""
	case parts == 2 && dir == "schemas" && strings.HasSuffix(name, ".schema.json"):
		return kindIgnored, "", ""
	case parts == 3 && dir == "environments" && name == "environment.json":
		env, _, _ = strings.Cut(rest, "/")
		return kindEnvironment, env, env
	case parts == 4 && dir == "environments" && strings.HasSuffix(name, ".json"):
		env, rest, _ = strings.Cut(rest, "/")
		if sub, _, _ := strings.Cut(rest, "/"); sub == "features" {
			return kindEnvironmentFeature, strings.TrimSuffix(name, ".json"), env
		}
	}
	if nested && name == "README.md" {
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
	case !validKey(key):
		return fmt.Sprintf("key %q is not valid: use letters, digits, '_', '.' and '-', starting with a letter or digit", key)
	}
	return ""
}

// validKey reports whether key matches KeyPattern, without running it.
func validKey(key string) bool {
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return key != ""
}

// fileEntry is one file of a loaded tree, kept in the Snapshot so that the
// next Load can tell what changed and reuse the rest.
type fileEntry struct {
	path, hash string
	doc        any // *Settings, *Feature, *Segment, *Environment or *FeatureState; nil for ignored files
	mode       FileMode
	kind       fileKind
}

// fileIndex lists the files of a tree sorted by path, in chunks of about
// indexChunk entries (none empty): a reload shares the chunks without a
// change with the previous snapshot instead of copying every entry.
type fileIndex [][]fileEntry

// indexChunk is a variable for tests.
var indexChunk = 256

// chunkEntries splits entries (sorted by path) into an index. The chunks
// share entries' array, capped so that nothing appends across them.
func chunkEntries(x fileIndex, entries []fileEntry) fileIndex {
	for len(entries) > 0 {
		n := len(entries)
		if n > 2*indexChunk {
			n = indexChunk
		}
		x = append(x, entries[:n:n])
		entries = entries[n:]
	}
	return x
}

// find returns the file at path, or nil.
func (x fileIndex) find(path string) *fileEntry {
	k, _ := slices.BinarySearchFunc(x, path, func(c []fileEntry, p string) int { return strings.Compare(c[len(c)-1].path, p) })
	if k == len(x) {
		return nil
	}
	i, ok := slices.BinarySearchFunc(x[k], path, func(e fileEntry, p string) int { return strings.Compare(e.path, p) })
	if !ok {
		return nil
	}
	return &x[k][i]
}

// parsed is the outcome of reading one file.
type parsed struct {
	file     File
	kind     fileKind
	key, env string
	doc      any
	data     []byte // nil when not read
	problems []Problem
	reused   bool // doc is a previous snapshot's: a load without one would have read the file
}

// Load reads files into a Snapshot of revision rev. It returns a
// *ValidationError listing every problem when the repository is invalid, and
// other errors only when a file cannot be read.
//
// When prev is not nil, files whose path and hash are unchanged reuse prev's
// parsed documents (see Snapshot), so only changed files are read. When few
// files changed, only the cross-file checks that depend on a changed file run
// again; the result is the same as a load without prev, problems included.
func Load(rev Revision, files []File, prev *Snapshot) (*Snapshot, error) {
	return load(rev, files, prev, true)
}

// load is Load; reload false checks the whole tree even when few files
// changed (for tests).
func load(rev Revision, files []File, prev *Snapshot, reload bool) (*Snapshot, error) {
	if len(files) > MaxFiles {
		return nil, &ValidationError{Problems: []Problem{{File: ".", Message: fmt.Sprintf("the repository has %d files; at most %d are allowed", len(files), MaxFiles)}}}
	}
	files, unique := sortFiles(files)
	if reload && prev != nil && len(prev.files) > 0 && unique {
		if d := diffFiles(files, prev); d != nil {
			return d.load(rev)
		}
	}
	results := make([]parsed, len(files))
	if err := parseFiles(results, files, prev); err != nil {
		return nil, err
	}
	snap, problems := assemble(rev, results)
	if len(problems) > 0 {
		return nil, invalid(problems, func(path string) *parsed {
			i, ok := slices.BinarySearchFunc(results, path, func(r parsed, p string) int { return strings.Compare(r.file.Path, p) })
			if !ok {
				return nil
			}
			return &results[i]
		})
	}
	return snap, nil
}

// sortFiles returns files sorted by path, sorting a copy when they are not
// already, and whether the paths are unique.
func sortFiles(files []File) (sorted []File, unique bool) {
	for i := 1; i < len(files); i++ {
		if files[i-1].Path >= files[i].Path {
			files = slices.Clone(files)
			slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
			for i := 1; i < len(files); i++ {
				if files[i-1].Path == files[i].Path {
					return files, false
				}
			}
			return files, true
		}
	}
	return files, true
}

// parseFiles parses files into results, in parallel when there are many.
func parseFiles(results []parsed, files []File, prev *Snapshot) error {
	const batch = 64
	if len(files) <= batch {
		for i := range files {
			if err := parseFile(&results[i], files[i], prev); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg      sync.WaitGroup
		next    int
		mu      sync.Mutex
		readErr error
	)
	for range min(runtime.GOMAXPROCS(0), (len(files)+batch-1)/batch) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next += batch
				mu.Unlock()
				if i >= len(files) {
					return
				}
				for j := i; j < i+batch && j < len(files); j++ {
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
	return readErr
}

// invalid positions and sorts problems into a *ValidationError; source
// returns the parsed file of a path (nil for none). It returns another error
// when a file needed for positions cannot be read.
func invalid(problems []Problem, source func(path string) *parsed) error {
	if err := positionProblems(problems, source); err != nil {
		return err
	}
	sortProblems(problems)
	return &ValidationError{Problems: problems}
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
		if e := prev.files.find(f.Path); e != nil && e.doc != nil && e.hash == f.Hash {
			r.doc, r.reused = e.doc, true // keyed already
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
	setKey(r.doc, r.key)
	return nil
}

// setKey records the key a document's path gives in the document, at parse
// time: documents are shared between snapshots and never modified once in one.
func setKey(doc any, key string) {
	switch d := doc.(type) {
	case *Feature:
		d.Key = key
	case *Segment:
		d.Key = key
	case *Environment:
		d.Key = key
	case *FeatureState:
		d.Feature = key
	}
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
	// The fast parser takes a well-formed document without repeated keys;
	// encoding/json and duplicateKeys say what is wrong with the others.
	// The tree of a feature or feature state lives only until its typed
	// document is built: its maps and slices are recycled.
	var arena *treeArena
	if recycleTrees && (kind == kindFeature || kind == kindEnvironmentFeature) {
		arena = arenas.Get().(*treeArena)
		defer func() {
			arena.release()
			arenas.Put(arena)
		}()
	}
	generic, parsed := parseTree(data, arena)
	var ptrs []string
	var offs []int
	if !parsed {
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
		ptrs, offs = duplicateKeys(data)
	}
	if _, ok := generic.(map[string]any); !ok {
		problem("", "expected a JSON object, found %s", jsonTypeName(generic))
		return nil
	}
	for i, p := range ptrs {
		line, col := lineCol(data, offs[i])
		c.problems = append(c.problems, Problem{File: c.file, Line: line, Column: col, Pointer: p,
			Message: fmt.Sprintf("duplicate key %q: JSON readers keep only one of them", lastToken(p))})
	}
	// The quick check answers for the common, valid document; the full
	// validator decides the rest and says what is wrong.
	if !schemas.QuickValid(kind.schema(), generic) {
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
// Positions are those of a load without a previous snapshot: the files such a
// load reads are read here when their document was reused.
func positionProblems(problems []Problem, source func(path string) *parsed) error {
	for i := range problems {
		p := &problems[i]
		if p.Line > 0 {
			continue
		}
		r := source(p.File)
		if r == nil || r.file.Read == nil {
			continue
		}
		if r.data == nil {
			if !r.reused {
				continue // a file that was not read (too large, a symlink, ...)
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
