package flagrepo

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// spec is a file of a test tree.
type spec struct {
	content string
	mode    FileMode
}

// tree is a repository: path -> file.
type tree map[string]spec

// files lists the tree as Files with blob-like hashes (of the content only,
// as git's: a mode change keeps the hash), in random order.
func (t tree) files(rng *rand.Rand) []File {
	var files []File
	for p, s := range t {
		data := []byte(s.content)
		sum := sha1.Sum(data)
		files = append(files, File{Path: p, Mode: s.mode, Hash: hex.EncodeToString(sum[:]), Size: int64(len(data)),
			Read: func() ([]byte, error) { return data, nil }})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	if rng != nil && rng.IntN(4) == 0 {
		rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	}
	return files
}

// editor makes random edits to a tree: valid ones mostly, and every kind of
// cross-file problem now and then.
type editor struct {
	rng *rand.Rand
	t   tree
	ids int // the last id handed out
	pad int // the number of padding files
}

var (
	testFeatures = []string{"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "F1", "f-8", "f.9"}
	testSegments = []string{"s0", "s1", "s2", "s3", "s4", "S0"}
	testEnvs     = []string{"e0", "e1", "e2", "E0"}
	testShas     = []string{strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)}
)

func (e *editor) pick(keys []string) string { return keys[e.rng.IntN(len(keys))] }

func (e *editor) chance(n int) bool { return e.rng.IntN(n) == 0 }

// id returns a new id, or now and then a small one that may be taken.
func (e *editor) id() int {
	if e.chance(12) {
		return 1 + e.rng.IntN(4)
	}
	e.ids++
	return e.ids
}

func (e *editor) broken() string {
	return []string{`{"id": `, `{"id": "one"}`, `[]`, `{"id": 1, "unknown": true}`, "\xef\xbb\xbf{}", `{"id": 1, "id": 2}`}[e.rng.IntN(6)]
}

func (e *editor) feature() string {
	if e.chance(25) {
		return e.broken()
	}
	doc := fmt.Sprintf(`{"id": %d, "default": {"enabled": %v, "value": "v"}`, e.id(), e.chance(2))
	if e.chance(2) {
		doc += `, "variants": [{"id": 1, "key": "a", "value": "A", "weight": 10}, {"id": 2, "key": "b", "value": "B"}]`
	}
	return doc + "}"
}

func (e *editor) segment() string {
	if e.chance(25) {
		return e.broken()
	}
	return fmt.Sprintf(`{"id": %d, "rules": [{"type": "ALL", "conditions": [{"property": "p", "operator": "EQUAL", "value": "%d"}]}]}`, e.id(), e.rng.IntN(3))
}

func (e *editor) environment() string {
	if e.chance(25) {
		return e.broken()
	}
	var keys []string
	for i := range e.rng.IntN(3) {
		sha := fmt.Sprintf("%064x", e.rng.Uint64())
		if e.chance(10) {
			sha = e.pick(testShas)
		}
		keys = append(keys, fmt.Sprintf(`{"name": "k%d", "sha256": %q}`, i, sha))
	}
	client := fmt.Sprintf("client_key_%d", e.rng.IntN(1000))
	if e.chance(8) {
		client = fmt.Sprintf("client_key_%d", e.rng.IntN(2))
	}
	return fmt.Sprintf("{\n  \"id\": %d,\n  \"name\": \"E\",\n  \"client_key\": %q,\n  \"server_keys\": [%s]\n}", e.id(), client, strings.Join(keys, ", "))
}

func (e *editor) state() string {
	if e.chance(25) {
		return e.broken()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"enabled\": %v", e.chance(2))
	switch e.rng.IntN(4) {
	case 0:
		b.WriteString(",\n  \"weights\": {\"a\": 20, \"b\": 30}")
	case 1:
		if e.chance(4) {
			b.WriteString(",\n  \"weights\": {\"zz\": 5}")
		}
	}
	if e.chance(2) {
		var overrides []string
		for i := range 1 + e.rng.IntN(2) {
			segment := e.pick(testSegments)
			if p := e.existing("segments/"); p != "" && !e.chance(6) {
				segment = strings.TrimSuffix(strings.TrimPrefix(p, "segments/"), ".json")
			}
			o := fmt.Sprintf(`{"segment": %q, "priority": %d, "enabled": true`, segment, i+1)
			if e.chance(3) {
				o += `, "weights": {"a": 50}`
			}
			overrides = append(overrides, o+"}")
		}
		fmt.Fprintf(&b, ",\n  \"segment_overrides\": [\n    %s\n  ]", strings.Join(overrides, ",\n    "))
	}
	b.WriteString("\n}")
	return b.String()
}

func (e *editor) set(path, content string) { e.t[path] = spec{content: content, mode: ModeRegular} }

// existing returns a random path of the tree that starts with prefix, or "".
func (e *editor) existing(prefix string) string {
	var paths []string
	for p := range e.t {
		if strings.HasPrefix(p, prefix) {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return ""
	}
	slices.Sort(paths)
	return e.pick(paths)
}

// padDirs are ignored paths that sort before, between and after the
// documents' directories.
var padDirs = []string{".pad/", "docs/", "environments/README.md-", "schemas/", "zz/"}

// padding sets or removes the padding files from..to-1.
func (e *editor) padding(from, to int) {
	for i := from; i < to; i++ {
		p := fmt.Sprintf("%s%04d/README.md", padDirs[i%len(padDirs)], i)
		if strings.HasPrefix(p, "schemas/") {
			p = fmt.Sprintf("schemas/p%04d.schema.json", i)
		}
		if _, ok := e.t[p]; ok && e.chance(2) {
			delete(e.t, p)
		} else {
			e.set(p, fmt.Sprint("pad ", e.rng.IntN(3)))
		}
	}
}

// edit makes one random change.
func (e *editor) edit() {
	if e.pad > 0 && e.chance(20) {
		from := e.rng.IntN(e.pad)
		e.padding(from, min(from+1+e.rng.IntN(20), e.pad))
		return
	}
	switch e.rng.IntN(16) {
	case 0, 1:
		e.set(featurePath(e.pick(testFeatures)), e.feature())
	case 2:
		delete(e.t, e.existing("features/"))
	case 3:
		e.set(segmentPath(e.pick(testSegments)), e.segment())
	case 4:
		delete(e.t, e.existing("segments/"))
	case 5:
		e.set(environmentPath(e.pick(testEnvs)), e.environment())
	case 6:
		if e.chance(3) {
			delete(e.t, e.existing("environments/"))
		} else if p := e.existing("environments/"); strings.HasSuffix(p, "/environment.json") {
			delete(e.t, p)
		}
	case 7, 8, 9:
		env, key := e.pick(testEnvs), e.pick(testFeatures)
		if p := e.existing("environments/"); strings.HasSuffix(p, "/environment.json") && !e.chance(6) {
			env = strings.Split(p, "/")[1]
		}
		if p := e.existing("features/"); p != "" && !e.chance(6) {
			key = strings.TrimSuffix(strings.TrimPrefix(p, "features/"), ".json")
		}
		e.set(statePath(env, key), e.state())
	case 10:
		if p := e.existing("environments/"); strings.Contains(p, "/features/") {
			delete(e.t, p)
		}
	case 11:
		switch e.rng.IntN(3) {
		case 0:
			delete(e.t, "gitflags.json")
		case 1:
			e.set("gitflags.json", e.broken())
		default:
			e.set("gitflags.json", fmt.Sprintf(`{"format_version": 1, "project": {"id": 1, "name": "P%d"}}`, e.rng.IntN(3)))
		}
	case 12:
		p := e.pick([]string{"README.md", "docs/README.md", "notes.json", ".github/ci.yml", "Segments/s0.json", "README.MD", "docs/README.md", ".github/ci.yml"})
		if _, ok := e.t[p]; ok {
			delete(e.t, p)
		} else {
			e.set(p, "text")
		}
	case 13:
		// A mode change keeps the hash.
		if p := e.existing(""); p != "" && e.chance(3) {
			s := e.t[p]
			if s.mode == ModeRegular {
				s.mode = ModeSymlink
			} else {
				s.mode = ModeRegular
			}
			e.t[p] = s
		}
	case 14, 15:
		// Modify a file in place, keeping its kind.
		switch p := e.existing(""); {
		case strings.HasPrefix(p, "features/"):
			e.set(p, e.feature())
		case strings.HasPrefix(p, "segments/"):
			e.set(p, e.segment())
		case strings.HasSuffix(p, "/environment.json"):
			e.set(p, e.environment())
		case strings.HasPrefix(p, "environments/"):
			e.set(p, e.state())
		}
	}
}

// fix removes the cause of one of the problems, to get back to valid trees.
func (e *editor) fix(problems []Problem) {
	p := problems[e.rng.IntN(len(problems))]
	switch {
	case p.File == "gitflags.json":
		e.set(p.File, `{"format_version": 1, "project": {"id": 1, "name": "P"}}`)
	case strings.HasSuffix(p.File, "/environment.json") && strings.HasPrefix(p.Message, "missing:"):
		if e.chance(2) {
			e.set(p.File, e.environment())
		} else {
			dir := strings.TrimSuffix(p.File, "environment.json")
			for q := range e.t {
				if strings.HasPrefix(q, dir) {
					delete(e.t, q)
				}
			}
		}
	default:
		delete(e.t, p.File)
	}
}

// exported is what callers see of a snapshot, and the indexes the next
// reload patches.
func exported(s *Snapshot) map[string]any {
	envs := map[string]Environment{}
	for k, e := range s.Environments {
		envs[k] = *e
	}
	return map[string]any{
		"revision": s.Revision, "settings": s.Settings,
		"features": s.Features, "segments": s.Segments, "environments": envs,
		"featureKeys": s.FeatureKeys(), "segmentKeys": s.SegmentKeys(), "environmentKeys": s.EnvironmentKeys(),
		"files": slices.Concat(s.files...), "foldedPaths": s.foldedPaths, "featureIDs": s.featureIDs, "segmentIDs": s.segmentIDs,
	}
}

func problemsOrNil(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	return ve.Problems
}

// TestReloadMatchesFullLoad edits trees at random, with every kind of
// problem coming and going, and checks that a reload given the last valid
// snapshot gives what a load without it gives: the same snapshot, or the same
// problems, in the same order. The load of the whole tree with the previous
// snapshot (for large changes) is checked the same way.
func TestReloadMatchesFullLoad(t *testing.T) {
	seeds, steps := 30, 80
	if testing.Short() || raceEnabled {
		seeds = 8
	}
	var valid, invalidSteps, reloads int
	defer func() { indexChunk = 256 }()
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		e := &editor{rng: rng, t: tree{}, ids: 100}
		e.set("gitflags.json", `{"format_version": 1, "project": {"id": 1, "name": "P"}}`)
		e.set("README.md", "docs")
		indexChunk = 256
		if seed%2 == 1 {
			// Small chunks, and ignored files around the documents, so that
			// the index has many chunks and the documents fall into several.
			indexChunk = 1 + seed%5
			e.pad = 60
			e.padding(0, e.pad)
		}
		var prev *Snapshot
		for step := range steps {
			n := 1 + rng.IntN(3)
			if rng.IntN(8) == 0 {
				n = 10 + rng.IntN(20)
			}
			for range n {
				e.edit()
			}
			rev := Revision{SHA: fmt.Sprint(seed, "/", step)}
			fresh, freshErr := Load(rev, e.t.files(rng), nil)
			want := problemsOrNil(t, freshErr)
			check := func(name string, snap *Snapshot, err error) {
				t.Helper()
				got := problemsOrNil(t, err)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d step %d: %s: problems\n%s\nwant\n%s", seed, step, name, (&ValidationError{got}).Error(), (&ValidationError{want}).Error())
				}
				if err == nil && !reflect.DeepEqual(exported(snap), exported(fresh)) {
					t.Fatalf("seed %d step %d: %s: the snapshot differs from a full load's", seed, step, name)
				}
			}
			full, err := load(rev, e.t.files(rng), prev, false)
			check("full load with the previous snapshot", full, err)
			if prev != nil && diffFiles(e.t.files(nil), prev) != nil {
				reloads++
			}
			snap, err := Load(rev, e.t.files(rng), prev)
			check("reload", snap, err)
			if err != nil {
				invalidSteps++
				fixes := 1 + rng.IntN(3)
				if rng.IntN(2) == 0 {
					fixes = len(want)
				}
				for range fixes {
					e.fix(want)
				}
				continue
			}
			valid++
			checkIndex(t, snap.files)
			if prev != nil {
				samePointers(t, prev, snap)
			}
			prev = snap
		}
	}
	t.Logf("%d valid and %d invalid trees, %d reloads", valid, invalidSteps, reloads)
	if valid < seeds*steps/5 || invalidSteps < seeds*steps/5 || reloads < seeds*steps/2 {
		t.Errorf("the edits do not exercise reloading enough")
	}
}

// samePointers checks that the documents of files unchanged since prev are
// prev's, and that changed files have new ones.
func samePointers(t *testing.T, prev, snap *Snapshot) {
	t.Helper()
	for _, e := range slices.Concat(snap.files...) {
		if e.doc == nil {
			continue
		}
		old := prev.files.find(e.path)
		same := old != nil && old.hash == e.hash && old.mode == e.mode
		if same != (old != nil && old.doc == e.doc) {
			t.Fatalf("%s: unchanged %v, but the document pointer is the same: %v", e.path, same, !same)
		}
	}
	for k, e := range snap.Environments {
		for key, st := range e.Features {
			if st != snap.files.find(statePath(k, key)).doc {
				t.Fatalf("environment %s, feature %s: the state is not the file's document", k, key)
			}
		}
	}
	for k, f := range snap.Features {
		if f != snap.files.find(featurePath(k)).doc {
			t.Fatalf("feature %s is not the file's document", k)
		}
	}
	for k, g := range snap.Segments {
		if g != snap.files.find(segmentPath(k)).doc {
			t.Fatalf("segment %s is not the file's document", k)
		}
	}
}

// checkIndex checks a snapshot's index: chunks neither empty nor too large,
// paths sorted and unique.
func checkIndex(t *testing.T, x fileIndex) {
	t.Helper()
	last := ""
	for k, c := range x {
		if len(c) == 0 || len(c) > 2*indexChunk {
			t.Fatalf("chunk %d has %d entries", k, len(c))
		}
		for _, e := range c {
			if e.path <= last && last != "" {
				t.Fatalf("chunk %d: %s after %s", k, e.path, last)
			}
			last = e.path
		}
	}
}
