package flagrepo

import (
	"maps"
	"slices"
	"strings"
)

// Reloading: a Load given the previous snapshot of a tree where few files
// changed. prev is valid, so every check found nothing in it; a check whose
// inputs did not change still finds nothing, and only the checks that read a
// changed file run again:
//
//   - the checks of one file on its own: the changed files;
//   - paths differing only in case: the groups of the added paths;
//   - unique feature and segment ids: the groups of the changed files' ids;
//   - the environments' ids, client keys and server keys: all of them (there
//     are few environments);
//   - a feature state's references: the changed states, the states of a
//     changed feature, and the states naming a removed segment;
//   - an environment directory without environment.json: the environments
//     whose environment.json or feature states changed;
//   - gitflags.json exists.
//
// A snapshot is then built by patching prev's maps (copies of them: prev is
// never modified), and it shares prev's unchanged documents.

// maxReloadFraction: when more than 1/maxReloadFraction of the files changed,
// Load checks the whole tree instead of reloading.
const maxReloadFraction = 4

// change is a file that is new, removed or different since the previous
// snapshot.
type change struct {
	path     string
	kind     fileKind
	key, env string
	old      *fileEntry // the previous snapshot's file; nil when new
	at       int        // index of the file in the new tree; -1 when removed
	entry    *fileEntry // its entry in the new index, set after parsing; nil when removed
	r        *parsed    // the parsed file; nil when removed
}

// doc returns the changed file's document: nil when it was removed or is
// invalid.
func (c *change) doc() any {
	if c.r == nil {
		return nil
	}
	return c.r.doc
}

// stateKey names a feature state: environment and feature.
type stateKey struct{ env, key string }

// reloader loads a tree as a change of prev.
type reloader struct {
	prev    *Snapshot
	files   []File    // the new tree, sorted by path
	index   fileIndex // the new tree's files; the entries of changed files are set after parsing
	changes []change  // sorted by path
	results []parsed  // the changed files that exist

	settings     *change
	features     map[string]*change // by key
	segments     map[string]*change
	environments map[string]*change // environment.json, by environment key
	states       map[stateKey]*change
	stateEnvs    map[string][]*change // changed feature states by environment
}

// diffFiles compares the tree files (sorted by path, paths unique) with
// prev's (at least one). It returns nil when too many files changed for a
// reload to pay.
func diffFiles(files []File, prev *Snapshot) *reloader {
	limit := max(len(files)/maxReloadFraction, 64)
	d := &reloader{prev: prev, files: files, index: make(fileIndex, 0, len(prev.files)+1)}
	i := 0 // in files
	for k, chunk := range prev.files {
		// The new files up to the chunk's last path (all of them for the last
		// chunk) make the chunk's part of the new index.
		start, before := i, len(d.changes)
		last := k == len(prev.files)-1
		end := chunk[len(chunk)-1].path
		j := 0
		for j < len(chunk) || (i < len(files) && (last || files[i].Path <= end)) {
			var c int
			switch {
			case j == len(chunk):
				c = -1
			case i == len(files) || (!last && files[i].Path > end):
				c = 1
			case files[i].Path == chunk[j].path:
				c = 0
			default:
				c = strings.Compare(files[i].Path, chunk[j].path)
			}
			switch {
			case c < 0:
				d.changes = append(d.changes, change{path: files[i].Path, at: i})
				i++
			case c > 0:
				d.changes = append(d.changes, change{path: chunk[j].path, old: &chunk[j], at: -1})
				j++
			default:
				if f, o := &files[i], &chunk[j]; f.Hash == "" || f.Hash != o.hash || f.Mode != o.mode {
					d.changes = append(d.changes, change{path: f.Path, old: o, at: i})
				}
				i++
				j++
			}
		}
		if len(d.changes) > limit {
			return nil
		}
		if len(d.changes) == before {
			d.index = append(d.index, chunk) // unchanged: shared
			continue
		}
		d.index = d.rebuild(d.index, start, i, chunk, d.changes[before:])
	}
	return d
}

// rebuild appends to x the entries of files[start:end], which replace the
// entries of old with the changes given.
func (d *reloader) rebuild(x fileIndex, start, end int, old []fileEntry, changes []change) fileIndex {
	entries := make([]fileEntry, end-start)
	j := 0
	for i := start; i < end; i++ {
		for len(changes) > 0 && changes[0].at < 0 {
			changes = changes[1:]
		}
		if len(changes) > 0 && changes[0].at == i {
			changes[0].entry = &entries[i-start]
			changes = changes[1:]
			continue
		}
		for old[j].path != d.files[i].Path {
			j++
		}
		entries[i-start] = old[j]
	}
	return chunkEntries(x, entries)
}

// load parses the changed files, runs the checks that depend on them and
// builds the snapshot.
func (d *reloader) load(rev Revision) (*Snapshot, error) {
	var changed []File
	for i := range d.changes {
		if c := &d.changes[i]; c.at >= 0 {
			changed = append(changed, d.files[c.at])
		}
	}
	d.results = make([]parsed, len(changed))
	if err := parseFiles(d.results, changed, nil); err != nil {
		return nil, err
	}
	d.features = map[string]*change{}
	d.segments = map[string]*change{}
	d.environments = map[string]*change{}
	d.states = map[stateKey]*change{}
	d.stateEnvs = map[string][]*change{}
	n := 0
	for i := range d.changes {
		c := &d.changes[i]
		if c.at >= 0 {
			c.r = &d.results[n]
			n++
			c.kind, c.key, c.env = c.r.kind, c.r.key, c.r.env
			*c.entry = fileEntry{path: c.path, hash: c.r.file.Hash, doc: c.r.doc, mode: c.r.file.Mode, kind: c.kind}
		} else {
			c.kind, c.key, c.env = classify(c.path)
		}
		switch c.kind {
		case kindSettings:
			d.settings = c
		case kindFeature:
			d.features[c.key] = c
		case kindSegment:
			d.segments[c.key] = c
		case kindEnvironment:
			d.environments[c.env] = c
		case kindEnvironmentFeature:
			d.states[stateKey{c.env, c.key}] = c
			d.stateEnvs[c.env] = append(d.stateEnvs[c.env], c)
		}
	}

	problems := d.fileProblems()
	if d.settings != nil && d.settings.r == nil {
		problems.missingSettings()
	}
	duplicateIDs(d.features, d.prev.featureIDs, func(doc any) (int64, bool) {
		f, ok := doc.(*Feature)
		if !ok {
			return 0, false
		}
		return f.ID, true
	}, problems.duplicateFeatureID)
	duplicateIDs(d.segments, d.prev.segmentIDs, func(doc any) (int64, bool) {
		g, ok := doc.(*Segment)
		if !ok {
			return 0, false
		}
		return g.ID, true
	}, problems.duplicateSegmentID)
	envKeys, envs := d.newEnvironments()
	checkEnvironments(envKeys, envs, &problems)
	d.checkStates(envs, &problems)
	d.checkMissingEnvironments(envs, &problems)
	if len(problems) > 0 {
		return nil, invalid(problems, d.source())
	}
	return d.snapshot(rev, envKeys, envs), nil
}

// fileProblems returns the problems of the changed files on their own and the
// paths that now differ only in case.
func (d *reloader) fileProblems() problemList {
	var problems problemList
	var added map[string][]string // lower-cased path -> new paths
	for i := range d.changes {
		c := &d.changes[i]
		if c.r != nil {
			problems = append(problems, c.r.problems...)
		}
		if c.old == nil && c.kind != kindIgnored {
			if added == nil {
				added = map[string][]string{}
			}
			lower := strings.ToLower(c.path)
			added[lower] = append(added[lower], c.path)
		}
	}
	// Only a new path can collide: prev has no collisions.
	for lower, paths := range added {
		group := paths
		for _, p := range []string{lower, d.prev.foldedPaths[lower]} {
			if e := d.prev.files.find(p); p != "" && e != nil && e.kind != kindIgnored && !d.removed(p) {
				group = append(group, p)
			}
		}
		if len(group) < 2 {
			continue
		}
		slices.Sort(group)
		group = slices.Compact(group)
		for i := 1; i < len(group); i++ {
			problems.caseCollision(group[i], group[i-1])
		}
	}
	return problems
}

// removed reports whether the file at path was removed.
func (d *reloader) removed(path string) bool {
	i, ok := slices.BinarySearchFunc(d.changes, path, func(c change, p string) int { return strings.Compare(c.path, p) })
	return ok && d.changes[i].at < 0
}

// duplicateIDs reports ids that the changed documents share with another
// document of their kind: every document of a group but the first (in key
// order) names the one before it, as a full check does. prevIDs holds the
// ids of prev, each used once.
func duplicateIDs(changed map[string]*change, prevIDs map[int64]string, id func(doc any) (int64, bool), report func(key, other string, id int64)) {
	// A group without a changed document is as it was in prev: no duplicate.
	var groups map[int64][]string
	for k, c := range changed {
		if x, ok := id(c.doc()); ok {
			if groups == nil {
				groups = map[int64][]string{}
			}
			groups[x] = append(groups[x], k)
		}
	}
	for x, keys := range groups {
		if k, ok := prevIDs[x]; ok && changed[k] == nil {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i := 1; i < len(keys); i++ {
			report(keys[i], keys[i-1], x)
		}
	}
}

// newEnvironments returns the keys (sorted) and the new values of the
// environments with a valid environment.json. Their Features maps are prev's
// until snapshot sets them.
func (d *reloader) newEnvironments() ([]string, map[string]*Environment) {
	keys := make([]string, 0, len(d.prev.environmentKeys)+len(d.environments))
	for _, k := range d.prev.environmentKeys {
		if d.environments[k] == nil {
			keys = append(keys, k)
		}
	}
	for k, c := range d.environments {
		if _, ok := c.doc().(*Environment); ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	envs := make(map[string]*Environment, len(keys))
	for _, k := range keys {
		var e Environment
		if c := d.environments[k]; c != nil {
			e = *c.doc().(*Environment)
		} else {
			e = *d.prev.Environments[k]
		}
		envs[k] = &e
	}
	return keys, envs
}

// feature returns the feature with key, or nil and whether its file exists
// but is invalid.
func (d *reloader) feature(key string) (f *Feature, broken bool) {
	if c := d.features[key]; c != nil {
		f, _ = c.doc().(*Feature)
		return f, f == nil && c.r != nil
	}
	return d.prev.Features[key], false
}

// segmentExists reports whether segments/<key>.json exists (valid or not).
func (d *reloader) segmentExists(key string) bool {
	if c := d.segments[key]; c != nil {
		return c.r != nil
	}
	return d.prev.Segments[key] != nil
}

// checkStates checks the references of the feature states that depend on a
// change, in the environments envs that exist (the states of the others are
// not checked, as a full check does not).
func (d *reloader) checkStates(envs map[string]*Environment, problems *problemList) {
	check := map[stateKey]*FeatureState{}
	for k, c := range d.states {
		if st, ok := c.doc().(*FeatureState); ok {
			check[k] = st
		}
	}
	// The unchanged states of changed features.
	for key := range d.features {
		for env := range envs {
			k := stateKey{env, key}
			if d.states[k] != nil {
				continue
			}
			if pe := d.prev.Environments[env]; pe != nil && pe.Features[key] != nil {
				check[k] = pe.Features[key]
			}
		}
	}
	// The unchanged states naming a removed segment.
	var gone map[string]bool
	for key, c := range d.segments {
		if c.r == nil {
			if gone == nil {
				gone = map[string]bool{}
			}
			gone[key] = true
		}
	}
	if gone != nil {
		for env := range envs {
			pe := d.prev.Environments[env]
			if pe == nil {
				continue
			}
			for key, st := range pe.Features {
				for _, o := range st.SegmentOverrides {
					if gone[o.Segment] && d.states[stateKey{env, key}] == nil {
						check[stateKey{env, key}] = st
						break
					}
				}
			}
		}
	}
	for k, st := range check {
		if envs[k.env] == nil {
			continue
		}
		f, broken := d.feature(k.key)
		checkState(problems, statePath(k.env, k.key), st, f, broken, d.segmentExists)
	}
}

// checkMissingEnvironments reports the changed environment directories that
// hold feature states but no environment.json.
func (d *reloader) checkMissingEnvironments(envs map[string]*Environment, problems *problemList) {
	check := func(env string) {
		if envs[env] != nil {
			return
		}
		if c := d.environments[env]; c != nil && c.r != nil {
			return // environment.json exists, with problems of its own
		}
		// A valid feature state, changed or not, is left in env.
		left := false
		unchanged := 0
		if pe := d.prev.Environments[env]; pe != nil {
			unchanged = len(pe.Features)
		}
		for _, c := range d.stateEnvs[env] {
			if _, ok := c.doc().(*FeatureState); ok {
				left = true
			}
			if c.old != nil {
				unchanged--
			}
		}
		if left || unchanged > 0 {
			problems.missingEnvironment(env)
		}
	}
	for env := range d.environments {
		check(env)
	}
	for env := range d.stateEnvs {
		if d.environments[env] == nil {
			check(env)
		}
	}
}

// source returns the parsed file of a path for positioning problems: a
// changed file as parsed, or an unchanged one to read.
func (d *reloader) source() func(path string) *parsed {
	unchanged := map[string]*parsed{}
	return func(path string) *parsed {
		i, ok := slices.BinarySearchFunc(d.changes, path, func(c change, p string) int { return strings.Compare(c.path, p) })
		if ok {
			return d.changes[i].r
		}
		if r := unchanged[path]; r != nil {
			return r
		}
		i, ok = slices.BinarySearchFunc(d.files, path, func(f File, p string) int { return strings.Compare(f.Path, p) })
		e := d.index.find(path)
		if !ok || e == nil {
			return nil
		}
		r := &parsed{file: d.files[i], kind: e.kind, doc: e.doc, reused: e.doc != nil}
		unchanged[path] = r
		return r
	}
}

// snapshot builds the snapshot of a valid tree from prev's, patched.
func (d *reloader) snapshot(rev Revision, envKeys []string, envs map[string]*Environment) *Snapshot {
	p := d.prev
	s := &Snapshot{
		Revision:        rev,
		Settings:        p.Settings,
		Features:        p.Features,
		Segments:        p.Segments,
		Environments:    envs,
		featureKeys:     p.featureKeys,
		segmentKeys:     p.segmentKeys,
		environmentKeys: envKeys,
		files:           d.index,
		foldedPaths:     p.foldedPaths,
		featureIDs:      p.featureIDs,
		segmentIDs:      p.segmentIDs,
	}
	if d.settings != nil {
		s.Settings = *d.settings.doc().(*Settings)
	}
	if len(d.features) > 0 {
		s.Features, s.featureKeys, s.featureIDs = patchDocs(p.Features, p.featureKeys, p.featureIDs, d.features, func(f *Feature) int64 { return f.ID })
	}
	if len(d.segments) > 0 {
		s.Segments, s.segmentKeys, s.segmentIDs = patchDocs(p.Segments, p.segmentKeys, p.segmentIDs, d.segments, func(g *Segment) int64 { return g.ID })
	}
	for k, e := range envs {
		changed := d.stateEnvs[k]
		pe := p.Environments[k]
		if pe != nil && len(changed) == 0 {
			e.Features = pe.Features // unchanged, so shared
			continue
		}
		var m map[string]*FeatureState
		if pe != nil {
			m = maps.Clone(pe.Features)
		} else {
			m = make(map[string]*FeatureState, len(changed))
		}
		for _, c := range changed {
			if st, ok := c.doc().(*FeatureState); ok {
				m[c.key] = st
			} else {
				delete(m, c.key)
			}
		}
		e.Features = m
	}
	cloned := false
	for i := range d.changes {
		c := &d.changes[i]
		if (c.old != nil && c.r != nil) || c.kind == kindIgnored {
			continue // the path is neither new nor removed
		}
		lower := strings.ToLower(c.path)
		if lower == c.path {
			continue
		}
		if !cloned {
			s.foldedPaths, cloned = maps.Clone(p.foldedPaths), true
			if s.foldedPaths == nil {
				s.foldedPaths = map[string]string{}
			}
		}
		if c.r == nil {
			if s.foldedPaths[lower] == c.path {
				delete(s.foldedPaths, lower)
			}
		} else {
			s.foldedPaths[lower] = c.path
		}
	}
	return s
}

// patchDocs returns copies of a snapshot's documents of one kind, their
// sorted keys and their ids, with the changes of a valid tree applied.
func patchDocs[T *Feature | *Segment](docs map[string]T, keys []string, ids map[int64]string, changed map[string]*change, id func(T) int64) (map[string]T, []string, map[int64]string) {
	docs = maps.Clone(docs)
	var added []string
	removed := map[string]bool{}
	newIDs := false
	for k, c := range changed {
		var old, cur T
		if c.old != nil {
			old, _ = c.old.doc.(T)
		}
		cur, _ = c.doc().(T)
		switch {
		case cur == nil:
			delete(docs, k)
			removed[k] = true
			newIDs = true
		case old == nil:
			docs[k] = cur
			added = append(added, k)
			newIDs = true
		default:
			docs[k] = cur
			newIDs = newIDs || id(old) != id(cur)
		}
	}
	if len(added) > 0 || len(removed) > 0 {
		slices.Sort(added)
		merged := make([]string, 0, len(keys)+len(added))
		for _, k := range keys {
			for len(added) > 0 && added[0] < k {
				merged = append(merged, added[0])
				added = added[1:]
			}
			if !removed[k] {
				merged = append(merged, k)
			}
		}
		keys = append(merged, added...)
	}
	if newIDs {
		ids = maps.Clone(ids)
		for k, c := range changed {
			if c.old != nil {
				if old, ok := c.old.doc.(T); ok && ids[id(old)] == k {
					delete(ids, id(old))
				}
			}
		}
		for k, c := range changed {
			if cur, ok := c.doc().(T); ok {
				ids[id(cur)] = k
			}
		}
	}
	return docs, keys, ids
}
