package flagsmithdoc

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Issue is something of the Flagsmith data that the repository cannot hold
// as it is: what it is, where it was read, why, and what the imported
// repository does instead.
type Issue struct {
	Source  string `json:"source"`  // the input it was read from
	Pointer string `json:"pointer"` // JSON pointer into the source
	Object  string `json:"object"`  // e.g. `segment "Beta users" (id 12)`
	Message string `json:"message"`
}

// String formats the issue as "source: pointer: object: message".
func (i Issue) String() string {
	var b strings.Builder
	b.WriteString(i.Source)
	if i.Pointer != "" {
		b.WriteString(": ")
		b.WriteString(i.Pointer)
	}
	if i.Object != "" {
		b.WriteString(": ")
		b.WriteString(i.Object)
	}
	b.WriteString(": ")
	b.WriteString(i.Message)
	return b.String()
}

// InputError is input that is not a readable Flagsmith document: invalid
// JSON, a required field missing, a field of the wrong type. Problems lists
// each, as "source: pointer: message".
type InputError struct {
	Problems []string
}

func (e *InputError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems in the input:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// issues collects Issues and Changes.
type issues struct {
	issues  []Issue
	changes []Issue
	seen    map[string]bool
}

func (l *issues) add(src, ptr, object, format string, args ...any) {
	l.push(&l.issues, Issue{Source: src, Pointer: ptr, Object: object, Message: fmt.Sprintf(format, args...)})
}

func (l *issues) change(src, ptr, object, format string, args ...any) {
	l.push(&l.changes, Issue{Source: src, Pointer: ptr, Object: object, Message: fmt.Sprintf(format, args...)})
}

func (l *issues) push(list *[]Issue, i Issue) {
	k := i.String()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if l.seen[k] {
		return
	}
	l.seen[k] = true
	*list = append(*list, i)
}

// sortIssues orders issues by source, then by where they were read.
func sortIssues(list []Issue, order map[string]int) {
	sort.SliceStable(list, func(a, b int) bool {
		x, y := list[a], list[b]
		if x.Source != y.Source {
			return order[x.Source] < order[y.Source]
		}
		return comparePointers(x.Pointer, y.Pointer) < 0
	})
}

// comparePointers orders JSON pointers token by token, numbers numerically.
func comparePointers(a, b string) int {
	ta, tb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(ta) && i < len(tb); i++ {
		if ta[i] == tb[i] {
			continue
		}
		na, ea := atoi(ta[i])
		nb, eb := atoi(tb[i])
		if ea && eb {
			if na < nb {
				return -1
			}
			return 1
		}
		if ta[i] < tb[i] {
			return -1
		}
		return 1
	}
	return len(ta) - len(tb)
}

func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// WriteReport writes the issues and changes of an import, one per line
// under a heading each ("Not imported as it is (N):", "Changed (N):"),
// nothing when there are none.
func (r *Result) WriteReport(w io.Writer) error {
	var b strings.Builder
	if len(r.Issues) > 0 {
		fmt.Fprintf(&b, "Not imported as it is (%d):\n", len(r.Issues))
		for _, i := range r.Issues {
			fmt.Fprintf(&b, "  %s\n", i)
		}
	}
	if len(r.Changes) > 0 {
		fmt.Fprintf(&b, "Changed (%d):\n", len(r.Changes))
		for _, i := range r.Changes {
			fmt.Fprintf(&b, "  %s\n", i)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
