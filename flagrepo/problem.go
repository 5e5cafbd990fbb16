package flagrepo

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a flag repository.
type Problem struct {
	File    string `json:"file"`             // slash-separated path in the repository
	Line    int    `json:"line,omitempty"`   // 1-based; 0 when unknown
	Column  int    `json:"column,omitempty"` // 1-based, in bytes; 0 when unknown
	Pointer string `json:"pointer"`          // RFC 6901 JSON pointer into the file ("" = whole file)
	Message string `json:"message"`          // plain English: what is wrong and how to fix it
}

// String formats the problem as "file:line:column: pointer: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Pointer != "" {
		b.WriteString(p.Pointer)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError is returned when a repository is invalid. It lists every
// problem found, sorted by file and position.
type ValidationError struct {
	Problems []Problem
}

// Error summarises the problems, one per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid flag repository: %d problem(s)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Pointer < b.Pointer
	})
}

// pointer builds an RFC 6901 JSON pointer from tokens (strings and ints).
func pointer(tokens ...any) string {
	var b []byte
	for _, t := range tokens {
		b = append(b, '/')
		switch t := t.(type) {
		case int:
			b = strconv.AppendInt(b, int64(t), 10)
		case string:
			for i := 0; i < len(t); i++ {
				switch t[i] {
				case '~':
					b = append(b, "~0"...)
				case '/':
					b = append(b, "~1"...)
				default:
					b = append(b, t[i])
				}
			}
		default:
			b = append(b, fmt.Sprint(t)...)
		}
	}
	return string(b)
}
