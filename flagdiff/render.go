package flagdiff

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// group is the changes of one environment ("" for the repository).
type group struct {
	env     string
	changes []Change
	risky   int
}

// groups splits the changes by environment: groups with risky changes
// first, then by key, repository-wide changes first among equals; risky
// changes first within a group.
func (r *Report) groups() []group {
	var gs []group
	for _, c := range r.Changes {
		i := slices.IndexFunc(gs, func(g group) bool { return g.env == c.Environment })
		if i < 0 {
			gs = append(gs, group{env: c.Environment})
			i = len(gs) - 1
		}
		gs[i].changes = append(gs[i].changes, c)
		if c.Risky() {
			gs[i].risky++
		}
	}
	for i := range gs {
		slices.SortStableFunc(gs[i].changes, func(x, y Change) int {
			return cmp.Compare(btoi(!x.Risky()), btoi(!y.Risky()))
		})
	}
	slices.SortStableFunc(gs, func(x, y group) int {
		return cmp.Or(cmp.Compare(btoi(x.risky == 0), btoi(y.risky == 0)), cmp.Compare(x.env, y.env))
	})
	return gs
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (g group) title() string {
	if g.env == "" {
		return "repository (every environment)"
	}
	return g.env
}

// summary is the one-line count of changes.
func (r *Report) summary() string {
	if !r.Compared {
		return "not compared"
	}
	if len(r.Changes) == 0 {
		return "no changes to flags"
	}
	s := plural(len(r.Changes), "change", "changes")
	if n := r.RiskyCount(); n > 0 {
		s += fmt.Sprintf(", %d risky", n)
	}
	return s
}

// sideProblems returns the sides that fail validation.
func (r *Report) invalidSides() []struct {
	role string
	side *Side
} {
	var out []struct {
		role string
		side *Side
	}
	for _, s := range []struct {
		role string
		side *Side
	}{{"BASE", &r.Base}, {"HEAD", &r.Head}} {
		if !s.side.Valid {
			out = append(out, s)
		}
	}
	return out
}

// setAsideText says what was done with a file set aside.
func setAsideText(a SetAside) string {
	switch {
	case a.Base == "left_out" && a.Head == "left_out":
		return "left out of both sides"
	case a.Base == "other":
		return "HEAD's version on both sides"
	case a.Head == "other":
		return "BASE's version on both sides"
	}
	return "BASE " + a.Base + ", HEAD " + a.Head
}

// WriteText writes the report as plain text: a line per change, grouped by
// environment, risky changes marked "!" with their risks.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "gitflags diff %s -> %s: %s\n", r.Base.label(), r.Head.label(), r.summary())
	for _, s := range r.invalidSides() {
		fmt.Fprintf(&b, "\n%s fails validation (%s):\n", s.role, plural(len(s.side.Problems), "problem", "problems"))
		for _, p := range s.side.Problems {
			fmt.Fprintf(&b, "  %s\n", p.String())
		}
	}
	if len(r.NotCompared) > 0 {
		b.WriteString("\nNot compared (invalid; their changes are not shown):\n")
		for _, a := range r.NotCompared {
			fmt.Fprintf(&b, "  %s: %s\n", a.Path, setAsideText(a))
		}
	}
	if !r.Compared {
		fmt.Fprintf(&b, "\nThe sides could not be compared: %s.\n", r.Failure)
		if len(r.Files) > 0 {
			b.WriteString("Files that differ:\n")
			for _, f := range r.Files {
				fmt.Fprintf(&b, "  %-8s %s\n", f.Kind, f.Path)
			}
		}
	}
	for _, g := range r.groups() {
		fmt.Fprintf(&b, "\n%s:\n", g.title())
		for _, c := range g.changes {
			mark := " "
			risks := ""
			if c.Risky() {
				mark = "!"
				risks = "  [" + strings.Join(c.Risks, ", ") + "]"
			}
			fmt.Fprintf(&b, "%s %s%s\n", mark, c.Message, risks)
		}
	}
	if r.Identities != nil {
		fmt.Fprintf(&b, "\nIdentities (%s):\n", r.Identities.Source)
		if len(r.Identities.Environments) == 0 {
			b.WriteString("  no environment changed\n")
		}
		for _, e := range r.Identities.Environments {
			if e.Note != "" {
				fmt.Fprintf(&b, "  %s: %s\n", e.Environment, e.Note)
				continue
			}
			fmt.Fprintf(&b, "  %s (%s evaluated):\n", e.Environment, plural(e.Identities, "identity", "identities"))
			for _, f := range e.Features {
				fmt.Fprintf(&b, "    %s: %d of %d change (%s)", code(f.Feature), f.Changed, e.Identities, pct(f.Percent))
				for i, x := range f.Examples {
					sep := ", e.g. "
					if i > 0 {
						sep = "; "
					}
					fmt.Fprintf(&b, "%s%s: %s -> %s", sep, x.Identifier, x.Before, x.After)
				}
				b.WriteString("\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Limits of the Markdown output, which goes into a pull-request comment
// (GitHub takes at most 65,536 characters).
const (
	mdChangesPerGroup = 50
	mdProblems        = 20
	mdIdentityRows    = 30
	mdMaxBytes        = 60_000
)

// mdEscape escapes text for Markdown: punctuation Markdown reads, and "<"
// (HTML).
func mdEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '#', '|', '~', '>', '!':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '<':
			b.WriteString("&lt;")
		case '\n':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// WriteMarkdown writes the report as Markdown for a pull-request comment:
// a summary, validation problems, then the changes grouped by environment
// (groups with risky changes first, risky changes first in each).
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### gitflags diff: %s → %s\n\n", code(r.Base.Name), code(r.Head.Name))
	fmt.Fprintf(&b, "**%s**", r.summary())
	if r.Compared && len(r.Changes) > 0 {
		var envs []string
		for _, g := range r.groups() {
			if g.env != "" {
				envs = append(envs, fmt.Sprintf("%s %d", g.env, len(g.changes)))
			}
		}
		if len(envs) > 0 {
			fmt.Fprintf(&b, " · %s", strings.Join(envs, ", "))
		}
	}
	fmt.Fprintf(&b, " · base %s, head %s\n", mdRevision(r.Base), mdRevision(r.Head))
	for _, s := range r.invalidSides() {
		fmt.Fprintf(&b, "\n> **⛔ %s fails validation** (%s). `gitflags validate` shows them all.\n>\n", s.role, plural(len(s.side.Problems), "problem", "problems"))
		for i, p := range s.side.Problems {
			if i == mdProblems {
				fmt.Fprintf(&b, "> - … and %d more\n", len(s.side.Problems)-mdProblems)
				break
			}
			loc := p.File
			if p.Line > 0 {
				loc = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
			}
			msg := p.Message
			if p.Pointer != "" {
				msg = p.Pointer + ": " + msg
			}
			fmt.Fprintf(&b, "> - %s: %s\n", code(loc), mdEscape(msg))
		}
	}
	if len(r.NotCompared) > 0 {
		b.WriteString("\n**Not compared** (invalid; the changes in these files are not shown):\n")
		for i, a := range r.NotCompared {
			if i == mdProblems {
				fmt.Fprintf(&b, "- … and %d more\n", len(r.NotCompared)-mdProblems)
				break
			}
			fmt.Fprintf(&b, "- %s: %s\n", code(a.Path), setAsideText(a))
		}
	}
	if !r.Compared {
		fmt.Fprintf(&b, "\nThe sides could not be compared: %s.\n", mdEscape(r.Failure))
		if len(r.Files) > 0 {
			b.WriteString("\nFiles that differ:\n")
			for i, f := range r.Files {
				if i == mdChangesPerGroup {
					fmt.Fprintf(&b, "- … and %d more\n", len(r.Files)-mdChangesPerGroup)
					break
				}
				fmt.Fprintf(&b, "- %s %s\n", f.Kind, code(f.Path))
			}
		}
	}
	for _, g := range r.groups() {
		fmt.Fprintf(&b, "\n#### %s", g.title())
		if g.risky > 0 {
			fmt.Fprintf(&b, " — %d risky", g.risky)
		}
		b.WriteString("\n\n")
		for i, c := range g.changes {
			if i == mdChangesPerGroup {
				fmt.Fprintf(&b, "- … and %d more (run `gitflags diff` for all)\n", len(g.changes)-mdChangesPerGroup)
				break
			}
			if c.Risky() {
				fmt.Fprintf(&b, "- ⚠️ %s _(%s)_\n", c.Message, strings.Join(c.Risks, ", "))
			} else {
				fmt.Fprintf(&b, "- %s\n", c.Message)
			}
		}
	}
	if r.Identities != nil {
		fmt.Fprintf(&b, "\n#### Identities\n\n%s.\n\n", mdEscape(r.Identities.Source))
		rows := 0
		b.WriteString("| environment | feature | identities changing | examples |\n|---|---|---|---|\n")
		for _, e := range r.Identities.Environments {
			if e.Note != "" {
				fmt.Fprintf(&b, "| %s | | %s | |\n", e.Environment, mdEscape(e.Note))
				continue
			}
			for _, f := range e.Features {
				if rows == mdIdentityRows {
					break
				}
				rows++
				var ex []string
				for _, x := range f.Examples {
					ex = append(ex, fmt.Sprintf("%s: %s → %s", cell(code(x.Identifier)), mdEscape(x.Before.String()), mdEscape(x.After.String())))
				}
				fmt.Fprintf(&b, "| %s | %s | %d of %d (%s) | %s |\n", e.Environment, code(f.Feature), f.Changed, e.Identities, pct(f.Percent), strings.Join(ex, "<br>"))
			}
		}
	}
	out := b.String()
	if len(out) > mdMaxBytes {
		cut := strings.LastIndexByte(out[:mdMaxBytes], '\n')
		out = out[:cut+1] + "\n… (cut to fit a comment; run `gitflags diff` for the whole report)\n"
	}
	_, err := io.WriteString(w, out)
	return err
}

// cell makes text safe in a table cell: a "|" would end the cell, even in
// a code span.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// mdRevision formats a side's revision for Markdown.
func mdRevision(s Side) string {
	switch {
	case s.Kind == "directory":
		return "a directory"
	case s.MergeBase:
		return code(short(s.Commit)) + " (merge base)"
	}
	return code(short(s.Commit))
}

// label describes a side for text output.
func (s Side) label() string {
	switch {
	case s.Kind == "directory":
		return s.Name + " (directory)"
	case s.MergeBase:
		return s.Name + " (merge base " + short(s.Commit) + ")"
	}
	return s.Name + " (" + short(s.Commit) + ")"
}

// WriteJSON writes the report as indented JSON (schemas/output/diff.schema.json).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
