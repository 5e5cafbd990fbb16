package flagdiff

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
)

// Loading both sides. The base is loaded in full and the head with the base
// as its previous snapshot, so the head costs only the files that differ
// (flagrepo's incremental load) and changes.Between compares the documents
// they share by pointer.
//
// A side that fails validation has no snapshot: flagrepo.Load is all or
// nothing. To still show what can be shown, the files with problems are
// set aside until both sides load, each the same way on both sides, so
// that no change is shown for it:
//
//   - a file invalid on one side takes the other side's version on both;
//   - a file invalid on both sides, or whose other version does not load
//     either (a feature state whose feature the change removed), is left
//     out of both;
//   - a problem at a file that does not exist (environments/x/environment.json
//     missing) leaves out the files of its directory.
//
// Every file set aside is listed in the report (NotCompared), with the
// problems of each side, so a partial diff is never silent.

// maxRepairRounds bounds the rounds of setting files aside.
const maxRepairRounds = 10

// version says which version of a file a side is compared with.
type version uint8

const (
	own   version = iota // the side's own file (the default)
	other                // the other side's file
	drop                 // none: left out
)

// none is the resolution of a file left out of both sides.
const none = -1

// sideFiles is one side's files, by path.
type sideFiles struct {
	rev   flagrepo.Revision
	files []flagrepo.File
	index map[string]int // path -> index in files
}

func newSideFiles(rev flagrepo.Revision, files []flagrepo.File) *sideFiles {
	s := &sideFiles{rev: rev, files: files, index: make(map[string]int, len(files))}
	for i := range files {
		s.index[files[i].Path] = i
	}
	return s
}

func (s *sideFiles) get(p string) (flagrepo.File, bool) {
	i, ok := s.index[p]
	if !ok {
		return flagrepo.File{}, false
	}
	return s.files[i], true
}

// loaded is the outcome of loading both sides.
type loaded struct {
	files    [2]*sideFiles
	problems [2][]flagrepo.Problem // each side's validation problems, as loaded
	// snaps are the snapshots compared: each side's own when valid, else
	// loaded with some files set aside; nil when no comparison was possible.
	snaps [2]*flagrepo.Snapshot
	// resolved holds the files set aside: the side whose version both
	// sides take (0 base, 1 head), or none.
	resolved map[string]int
	// failure says why no comparison was possible (snaps nil).
	failure string
}

// loadSides lists and loads both sources. It fails only when a side cannot
// be read, or is not a flag repository; validation problems are in the
// result.
func loadSides(base, head Source) (*loaded, error) {
	bf, brev, err := base.files()
	if err != nil {
		return nil, err
	}
	if !hasManifest(bf) {
		return nil, fmt.Errorf("BASE %s: %w: it has no %s at its root", base.Name, ErrNotFlagRepository, manifest)
	}
	hf, hrev, err := head.files()
	if err != nil {
		return nil, err
	}
	if !hasManifest(hf) {
		return nil, fmt.Errorf("HEAD %s: %w: it has no %s at its root", head.Name, ErrNotFlagRepository, manifest)
	}
	l := &loaded{files: [2]*sideFiles{newSideFiles(brev, bf), newSideFiles(hrev, hf)}}

	var snaps [2]*flagrepo.Snapshot
	for s, src := range []Source{base, head} {
		snap, err := gitstore.Load(l.files[s].rev, slices.Clone(l.files[s].files), snaps[0])
		var ve *flagrepo.ValidationError
		switch {
		case err == nil:
			snaps[s] = snap
		case errors.As(err, &ve):
			l.problems[s] = ve.Problems
		default:
			return nil, fmt.Errorf("load %s: %w", src.Name, err)
		}
	}
	if snaps[0] != nil && snaps[1] != nil {
		l.snaps = snaps
		return l, nil
	}
	return l, l.repair(snaps)
}

// repair sets invalid files aside until both sides load (see above).
// valid holds the sides that loaded as they are.
func (l *loaded) repair(valid [2]*flagrepo.Snapshot) error {
	l.resolved = map[string]int{}
	// bad[s][p]: side s's version of p does not load (on one side or the
	// other).
	bad := [2]map[string]bool{{}, {}}
	pending := l.problems
	for range maxRepairRounds {
		progress := false
		leaveOut := func(p string) {
			if r, set := l.resolved[p]; !set || r != none {
				l.resolved[p] = none
				progress = true
			}
		}
		for s := range 2 {
			o := 1 - s
			for _, pr := range pending[s] {
				p := pr.File
				if p == "" || p == "." {
					l.failure = fmt.Sprintf("%s: %s", side(s), pr.Message)
					return nil
				}
				r, set := l.resolved[p]
				mine, has := l.files[s].get(p)
				switch {
				case !set && has:
					bad[s][p] = true
					theirs, ok := l.files[o].get(p)
					if ok && theirs.Hash == mine.Hash && mine.Hash != "" {
						bad[o][p] = true // the same file
					}
					if ok && !bad[o][p] {
						l.resolved[p] = o
						progress = true
					} else {
						leaveOut(p)
					}
				case set && r != none:
					// That version does not load on this side either.
					bad[r][p] = true
					leaveOut(p)
				default:
					// The file is on neither side (a missing
					// environments/x/environment.json): leave out its
					// directory.
					dir := path.Dir(p)
					if dir == "." {
						l.failure = fmt.Sprintf("%s: %s: %s", side(s), p, pr.Message)
						return nil
					}
					for _, sf := range l.files {
						for _, f := range sf.files {
							if strings.HasPrefix(f.Path, dir+"/") {
								leaveOut(f.Path)
							}
						}
					}
				}
			}
		}
		if !progress {
			l.failure = "the problems remain with the invalid files set aside"
			return nil
		}
		var snaps [2]*flagrepo.Snapshot
		var problems [2][]flagrepo.Problem
		for s := range 2 {
			if valid[s] != nil && !l.changes(s) {
				snaps[s] = valid[s]
				continue
			}
			prev := valid[0]
			if prev == nil {
				prev = valid[1]
			}
			if s == 1 && snaps[0] != nil {
				prev = snaps[0]
			}
			snap, err := gitstore.Load(l.files[s].rev, l.sideFiles(s), prev)
			var ve *flagrepo.ValidationError
			switch {
			case err == nil:
				snaps[s] = snap
			case errors.As(err, &ve):
				problems[s] = ve.Problems
			default:
				return fmt.Errorf("load %s: %w", side(s), err)
			}
		}
		if snaps[0] != nil && snaps[1] != nil {
			l.snaps = snaps
			return nil
		}
		pending = problems
	}
	l.failure = fmt.Sprintf("the problems remain after %d rounds of setting invalid files aside", maxRepairRounds)
	return nil
}

// version returns the version of path p that side s is compared with.
func (l *loaded) version(s int, p string) version {
	r, set := l.resolved[p]
	switch {
	case !set || r == s:
		return own
	case r == none:
		return drop
	}
	return other
}

// changes reports whether the files set aside change side s's files.
func (l *loaded) changes(s int) bool {
	for p, r := range l.resolved {
		mine, has := l.files[s].get(p)
		switch {
		case r == s:
		case r == none:
			if has {
				return true
			}
		default:
			theirs, _ := l.files[r].get(p)
			if !has || theirs.Hash != mine.Hash || mine.Hash == "" {
				return true
			}
		}
	}
	return false
}

// sideFiles returns side s's files with the files set aside resolved.
func (l *loaded) sideFiles(s int) []flagrepo.File {
	out := make([]flagrepo.File, 0, len(l.files[s].files)+len(l.resolved))
	for _, f := range l.files[s].files {
		if _, set := l.resolved[f.Path]; !set {
			out = append(out, f)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(l.resolved)) {
		if r := l.resolved[p]; r != none {
			if f, ok := l.files[r].get(p); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

// side names side s for messages.
func side(s int) string {
	if s == 0 {
		return "BASE"
	}
	return "HEAD"
}
