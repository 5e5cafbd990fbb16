// Package history answers, for a branch of a flag repository, "which commits
// changed this feature, segment or environment, and how": the audit log of
// the admin API, read from Git.
//
// An Index walks the branch's first-parent chain once, diffs each commit's
// tree with its first parent's, and keeps, per feature, segment and
// environment, the positions of the commits that changed one of its
// documents. It then follows the branch incrementally: a query for a head it
// has not seen indexes only the commits since the newest it knows, and a
// branch that was rewritten (a force-push) is re-indexed from the last commit
// the old and new histories share. A query costs the entries it returns, not
// the length of the history. An Index made with Open is saved to a file as it
// grows (an append-only log, one checksummed record per commit), so that a
// restart indexes only the commits since.
//
// A merge commit is one entry: what it changed relative to its first parent
// (what the merge brought into the branch); the commits of the merged branch
// are not listed on their own. Renames are not detected (Git records none): a
// renamed feature is removed under its old key and added under its new one.
package history

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
)

// Limits of a query.
const (
	// DefaultLimit is the number of entries of a page when Query.Limit is 0.
	DefaultLimit = 50
	// MaxLimit is the largest Query.Limit.
	MaxLimit = 500
	// MaxChanges is the number of documents an entry lists at most; the
	// rest are counted in Entry.MoreChanges.
	MaxChanges = 100
)

// Query selects the commits of a branch's history. The filters that are set
// combine: a commit is listed when it changed a document matching all of
// them, and the entry lists those documents only. With no filter, every
// commit that changed a feature, segment or environment document is listed.
type Query struct {
	// Feature is a feature key: features/<key>.json and
	// environments/*/features/<key>.json.
	Feature string
	// Segment is a segment key: segments/<key>.json, and the environment
	// feature files whose segment overrides for it were added, removed or
	// changed (not those that merely keep one while changing something
	// else).
	Segment string
	// Environment is an environment key: every file under
	// environments/<key>/.
	Environment string
	// Limit is the number of entries of a page, 1 to MaxLimit; 0 means
	// DefaultLimit.
	Limit int
	// Cursor is Page.Next of the previous page, or empty for the newest
	// entries.
	Cursor string
}

// Entry is one commit of the history.
type Entry struct {
	Revision    string    `json:"revision"` // the commit's full hash
	Author      string    `json:"author"`
	AuthorEmail string    `json:"author_email"`
	Time        time.Time `json:"time"`    // the author's time
	Message     string    `json:"message"` // the whole message: subject, blank line, body
	// Changes are the documents the commit changed that match the query, in
	// path order; at most MaxChanges.
	Changes []Change `json:"changes"`
	// MoreChanges is the number of matching documents left out of Changes.
	MoreChanges int `json:"more_changes,omitempty"`
}

// Change is a document before and after a commit. Before is null (a nil
// RawMessage) when the commit added the file, After when it removed it. A
// file that is not JSON is given as a JSON string holding its text, and one
// larger than flagrepo.MaxFileSize as a JSON string saying so.
type Change struct {
	Path   string          `json:"path"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// Page is one page of a history, newest first.
type Page struct {
	Entries []Entry `json:"entries"`
	// Next is the cursor of the next page (older entries); empty when this
	// page ends the history. It stays valid while commits are added on top
	// of the branch, and becomes unknown when the branch is rewritten below
	// it.
	Next string `json:"next,omitempty"`
}

// QueryError is a query that cannot be answered as asked: Param names the
// parameter (feature, segment, environment, limit or cursor).
type QueryError struct {
	Param  string
	Value  string
	Reason string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("history: %s %q: %s", e.Param, e.Value, e.Reason)
}

// check validates q, filling in the default limit, and returns the commit
// its cursor names (the zero hash without one).
func (q *Query) check() (plumbing.Hash, error) {
	for _, k := range []struct{ param, key string }{
		{"feature", q.Feature}, {"segment", q.Segment}, {"environment", q.Environment},
	} {
		if k.key == "" {
			continue
		}
		if len(k.key) > flagrepo.MaxKeyLength {
			return plumbing.ZeroHash, &QueryError{k.param, k.key, fmt.Sprintf("a key is at most %d characters long", flagrepo.MaxKeyLength)}
		}
		if !flagrepo.KeyPattern.MatchString(k.key) {
			return plumbing.ZeroHash, &QueryError{k.param, k.key, "not a valid key: use letters, digits, '_', '.' and '-', starting with a letter or digit"}
		}
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit < 0 || q.Limit > MaxLimit:
		return plumbing.ZeroHash, &QueryError{"limit", fmt.Sprint(q.Limit), fmt.Sprintf("must be 1 to %d", MaxLimit)}
	}
	if q.Cursor == "" {
		return plumbing.ZeroHash, nil
	}
	b, err := hex.DecodeString(q.Cursor)
	if err != nil || len(b) != len(plumbing.ZeroHash) || strings.ToLower(q.Cursor) != q.Cursor {
		return plumbing.ZeroHash, &QueryError{"cursor", q.Cursor, "not a cursor: pass the \"next\" of a previous page"}
	}
	return plumbing.Hash(b), nil
}

// cursorOf is the cursor that continues after the entry of commit h.
func cursorOf(h plumbing.Hash) string { return h.String() }

// Query returns a page of the history of the branch whose head is head,
// newest first. It indexes the commits up to head first when the index does
// not know head yet. It is safe for concurrent use, also while the branch
// moves. Errors in the query are *QueryError.
func (ix *Index) Query(ctx context.Context, head plumbing.Hash, q Query) (Page, error) {
	cursor, err := q.check()
	if err != nil {
		return Page{}, err
	}
	if head.IsZero() {
		return Page{}, errors.New("history: no head commit given")
	}
	var hits []hit
	var more bool
	// A concurrent update for a rewritten branch may drop head again between
	// the update and the lookup; a few attempts settle it.
	for attempt := 0; ; attempt++ {
		var found bool
		hits, more, found, err = ix.find(ctx, head, cursor, &q)
		if err != nil || found {
			break
		}
		if attempt == 3 {
			return Page{}, fmt.Errorf("history: commit %s keeps leaving the index: the branch is being rewritten concurrently", head)
		}
		if err := ix.Update(ctx, head); err != nil {
			return Page{}, err
		}
	}
	if err != nil {
		return Page{}, err
	}
	page := Page{Entries: make([]Entry, 0, len(hits))}
	for _, h := range hits {
		if err := ctx.Err(); err != nil {
			return Page{}, fmt.Errorf("history: %w", err)
		}
		e, err := ix.entry(h)
		if err != nil {
			return Page{}, err
		}
		page.Entries = append(page.Entries, e)
	}
	if more && len(hits) > 0 {
		page.Next = cursorOf(hits[len(hits)-1].commit)
	}
	return page, nil
}

// hit is a commit of a page and its changes that match the query.
type hit struct {
	commit  plumbing.Hash
	changes []*change
	more    int
}

// find collects the entries of a page from the index. found is false when
// the index does not know head.
func (ix *Index) find(ctx context.Context, head, cursor plumbing.Hash, q *Query) (hits []hit, more, found bool, err error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	hp, ok := ix.pos[head]
	if !ok {
		return nil, false, false, nil
	}
	start := hp
	if q.Cursor != "" {
		cp, ok := ix.pos[cursor]
		if !ok || cp > hp {
			return nil, false, true, &QueryError{"cursor", q.Cursor, fmt.Sprintf("names no commit in the history of %s (the branch was rewritten, or the cursor is another branch's): start again without a cursor", head)}
		}
		start = cp - 1
	}
	// Walk the shortest of the filters' lists; the others are checked on
	// the changes themselves.
	list := ix.any
	for _, l := range []struct {
		key string
		m   map[string][]int
	}{{q.Feature, ix.features}, {q.Segment, ix.segments}, {q.Environment, ix.environments}} {
		if l.key == "" {
			continue
		}
		p := l.m[l.key]
		if len(p) == 0 {
			return nil, false, true, nil
		}
		if len(p) < len(list) {
			list = p
		}
	}
	i := sort.SearchInts(list, start+1) - 1
	for n := 0; i >= 0; i, n = i-1, n+1 {
		if n%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, false, true, fmt.Errorf("history: %w", err)
			}
		}
		p := list[i]
		var matched []*change
		for _, c := range ix.changes[p] {
			if c.matches(q) {
				matched = append(matched, c)
			}
		}
		if len(matched) == 0 {
			continue
		}
		if len(hits) == q.Limit {
			return hits, true, true, nil
		}
		h := hit{commit: ix.chain[p], changes: matched}
		if len(matched) > MaxChanges {
			h.changes, h.more = matched[:MaxChanges], len(matched)-MaxChanges
		}
		hits = append(hits, h)
	}
	return hits, false, true, nil
}

// entry reads the commit and documents of a hit.
func (ix *Index) entry(h hit) (Entry, error) {
	c, err := ix.repo.ReadCommit(h.commit)
	if err != nil {
		return Entry{}, fmt.Errorf("history: %w", err)
	}
	e := Entry{
		Revision:    c.SHA,
		Author:      c.Author,
		AuthorEmail: c.AuthorEmail,
		Time:        c.Time,
		Message:     c.Message,
		Changes:     make([]Change, 0, len(h.changes)),
		MoreChanges: h.more,
	}
	for _, ch := range h.changes {
		before, err := ix.document(ch.before, ch.path)
		if err != nil {
			return Entry{}, err
		}
		after, err := ix.document(ch.after, ch.path)
		if err != nil {
			return Entry{}, err
		}
		e.Changes = append(e.Changes, Change{Path: ch.path, Before: before, After: after})
	}
	return e, nil
}

// document reads blob h of the file at path p as JSON; nil for the zero hash.
func (ix *Index) document(h plumbing.Hash, p string) (json.RawMessage, error) {
	if h.IsZero() {
		return nil, nil
	}
	data, err := ix.repo.ReadBlob(h)
	var tl *gitstore.TooLargeError
	switch {
	case errors.As(err, &tl):
		return quote(fmt.Sprintf("(not shown: the file is %d bytes; at most %d are shown)", tl.Size, flagrepo.MaxFileSize)), nil
	case err != nil:
		return nil, fmt.Errorf("history: %s: %w", p, err)
	case json.Valid(data):
		return json.RawMessage(data), nil
	}
	return quote(strings.ToValidUTF8(string(data), "\uFFFD")), nil
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a valid UTF-8 string always encodes
	return b
}

// matches reports whether c matches every filter of q.
func (c *change) matches(q *Query) bool {
	return (q.Feature == "" || c.feature == q.Feature) &&
		(q.Environment == "" || c.environment == q.Environment) &&
		(q.Segment == "" || slices.Contains(c.segments, q.Segment))
}
