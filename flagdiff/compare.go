package flagdiff

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
)

// Options says what Compare adds to the changes.
type Options struct {
	// Identities, when not nil, are evaluated on both sides: the report
	// says how many change result, per feature and environment.
	Identities *IdentitySet
	// Examples is the number of identities shown per feature and
	// environment whose result changes (default 3).
	Examples int
}

// Compare loads base and head and says what changed from one to the other.
// It fails only when a side cannot be read or is not a flag repository; a
// side that fails validation is reported in the Report (Side.Valid false,
// its problems, the files set aside), and the changes of every other file
// are still listed.
func Compare(base, head Source, opts Options) (*Report, error) {
	l, err := loadSides(base, head)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Base:        side0(base, l.problems[0]),
		Head:        side0(head, l.problems[1]),
		NotCompared: l.setAside(),
		Changes:     []Change{},
	}
	prod := func(key string) bool {
		b := &builder{base: l.snaps[0], head: l.snaps[1]}
		if b.base == nil {
			return key == "production" || key == "prod"
		}
		return b.production(key)
	}
	r.Changes = append(r.Changes, stillReferenced(l, prod)...)
	if l.snaps[0] == nil {
		r.Failure = l.failure
		r.Files = fileChanges(l)
		sortChanges(r.Changes)
		return r, nil
	}
	r.Compared = true
	for _, c := range build(l.snaps[0], l.snaps[1]) {
		// A removal still referenced is said once, by stillReferenced.
		if (c.Kind == "feature_removed" || c.Kind == "segment_removed") && c.Environment == "" && slices.ContainsFunc(r.Changes, func(x Change) bool {
			return x.Subject == c.Subject && x.Key == c.Key
		}) {
			continue
		}
		r.Changes = append(r.Changes, c)
	}
	sortChanges(r.Changes)
	if opts.Identities != nil {
		examples := opts.Examples
		if examples <= 0 {
			examples = 3
		}
		if r.Identities, err = impact(l.snaps[0], l.snaps[1], opts.Identities, examples); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// side0 describes a source and its validation problems.
func side0(s Source, problems []flagrepo.Problem) Side {
	out := Side{Name: s.Name, Kind: "directory", Valid: len(problems) == 0, Problems: problems}
	if !s.IsDir() {
		out.Kind, out.Commit, out.MergeBase = "revision", s.Commit.String(), s.MergeBase
	}
	if out.Problems == nil {
		out.Problems = []flagrepo.Problem{}
	}
	return out
}

// setAside lists the files compared with another version than their own.
func (l *loaded) setAside() []SetAside {
	names := map[version]string{own: "own", other: "other", drop: "left_out"}
	out := []SetAside{}
	for _, p := range slices.Sorted(maps.Keys(l.resolved)) {
		out = append(out, SetAside{Path: p, Base: names[l.version(0, p)], Head: names[l.version(1, p)]})
	}
	return out
}

// fileChanges lists the files that differ between the sides.
func fileChanges(l *loaded) []FileChange {
	out := []FileChange{}
	b, h := l.files[0], l.files[1]
	for _, f := range b.files {
		if hf, ok := h.get(f.Path); !ok {
			out = append(out, FileChange{Path: f.Path, Kind: "removed"})
		} else if hf.Hash != f.Hash || hf.Hash == "" {
			out = append(out, FileChange{Path: f.Path, Kind: "modified"})
		}
	}
	for _, f := range h.files {
		if _, ok := b.get(f.Path); !ok {
			out = append(out, FileChange{Path: f.Path, Kind: "added"})
		}
	}
	slices.SortFunc(out, func(x, y FileChange) int { return strings.Compare(x.Path, y.Path) })
	return out
}

// stillReferenced finds features and segments that HEAD removes while its
// files still refer to them (which makes HEAD fail validation): a feature
// state left in an environment, a segment override of a removed segment.
func stillReferenced(l *loaded, production func(string) bool) []Change {
	if len(l.problems[1]) == 0 {
		return nil
	}
	base, head := l.files[0], l.files[1]
	removed := func(dir string) map[string]bool {
		m := map[string]bool{}
		for _, f := range base.files {
			if name, ok := strings.CutPrefix(f.Path, dir+"/"); ok && strings.HasSuffix(name, ".json") && !strings.Contains(name, "/") {
				if _, still := head.get(f.Path); !still {
					m[strings.TrimSuffix(name, ".json")] = true
				}
			}
		}
		return m
	}
	features, segments := removed("features"), removed("segments")
	if len(features) == 0 && len(segments) == 0 {
		return nil
	}
	featureEnvs := map[string][]string{}
	segmentUses := map[string][]string{} // segment -> "feature in env"
	segmentEnvs := map[string][]string{}
	for _, f := range head.files {
		env, name, ok := environmentFeature(f.Path)
		if !ok {
			continue
		}
		if features[name] {
			featureEnvs[name] = append(featureEnvs[name], env)
		}
		if len(segments) == 0 || f.Read == nil {
			continue
		}
		if bf, ok := base.get(f.Path); ok && bf.Hash == f.Hash && !slices.ContainsFunc(l.problems[1], func(p flagrepo.Problem) bool { return p.File == f.Path }) {
			continue // unchanged and valid: it uses no removed segment
		}
		data, err := f.Read()
		if err != nil {
			continue // unreadable: its problem is reported
		}
		var st struct {
			SegmentOverrides []struct {
				Segment string `json:"segment"`
			} `json:"segment_overrides"`
		}
		if json.Unmarshal(data, &st) != nil {
			continue
		}
		for _, o := range st.SegmentOverrides {
			if segments[o.Segment] {
				segmentUses[o.Segment] = append(segmentUses[o.Segment], fmt.Sprintf("%s in %s", code(name), env))
				segmentEnvs[o.Segment] = append(segmentEnvs[o.Segment], env)
			}
		}
	}
	var out []Change
	risks := func(envs []string) []string {
		r := []string{RiskRemovedStillReferenced}
		if slices.ContainsFunc(envs, production) {
			r = append(r, RiskProduction)
		}
		return r
	}
	for _, k := range slices.Sorted(maps.Keys(featureEnvs)) {
		envs := featureEnvs[k]
		out = append(out, Change{Subject: "feature", Key: k, Kind: "feature_removed_still_referenced", Risks: risks(envs),
			Message: fmt.Sprintf("feature %s removed while still overridden in %s", code(k), strings.Join(envs, ", "))})
	}
	for _, k := range slices.Sorted(maps.Keys(segmentUses)) {
		out = append(out, Change{Subject: "segment", Key: k, Kind: "segment_removed_still_referenced", Risks: risks(segmentEnvs[k]),
			Message: fmt.Sprintf("segment %s removed while still used by %s", code(k), strings.Join(segmentUses[k], ", "))})
	}
	return out
}

// environmentFeature splits environments/<env>/features/<feature>.json.
func environmentFeature(p string) (env, feature string, ok bool) {
	rest, ok := strings.CutPrefix(p, "environments/")
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] != "features" || !strings.HasSuffix(parts[2], ".json") {
		return "", "", false
	}
	return parts[0], strings.TrimSuffix(parts[2], ".json"), true
}
