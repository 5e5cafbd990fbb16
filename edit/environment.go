package edit

import (
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
)

// EnvironmentSettings changes an environment's settings. A nil field is left
// as it is.
type EnvironmentSettings struct {
	Name              *string
	Description       *string // "" removes it
	HideDisabledFlags *bool
	HideSensitiveData *bool
	AllowClientTraits *bool
	ReviewRequired    *bool
}

// UpdateEnvironment changes environments/<env>/environment.json. A setting
// is written only when it changes what the environment does: setting
// allow_client_traits to true where the file leaves it out (its default)
// changes nothing.
func UpdateEnvironment(snap *flagrepo.Snapshot, files Files, env string, s EnvironmentSettings) (Result, error) {
	if _, err := lookupEnvironment(snap, env); err != nil {
		return Result{}, err
	}
	if s.Name != nil {
		if err := checkText("name", *s.Name, 1, 200); err != nil {
			return Result{}, err
		}
	}
	if s.Description != nil {
		if err := checkText("description", *s.Description, 0, maxDescription); err != nil {
			return Result{}, err
		}
	}
	path := environmentPath(env)
	doc, old, err := readDoc(files, path)
	if err != nil {
		return Result{}, err
	}
	if doc == nil {
		return Result{}, &NotFoundError{Kind: "environment", Key: env}
	}
	var parts []string
	if s.Name != nil {
		if cur := doc.get("name"); cur == nil || cur.text != *s.Name {
			doc.set("name", stringNode(*s.Name), environmentOrder)
			parts = append(parts, "name "+quote(*s.Name))
		}
	}
	if s.Description != nil {
		cur := doc.get("description")
		switch d := *s.Description; {
		case d == "" && cur != nil:
			doc.remove("description")
			parts = append(parts, "description removed")
		case d != "" && (cur == nil || cur.text != d):
			doc.set("description", stringNode(d), environmentOrder)
			parts = append(parts, "description")
		}
	}
	for _, b := range []struct {
		key  string
		v    *bool
		dflt bool
	}{
		{"hide_disabled_flags", s.HideDisabledFlags, snap.Settings.Project.HideDisabledFlags},
		{"hide_sensitive_data", s.HideSensitiveData, false},
		{"allow_client_traits", s.AllowClientTraits, true},
		{"review_required", s.ReviewRequired, false},
	} {
		if b.v == nil {
			continue
		}
		cur := b.dflt
		if n := doc.get(b.key); n != nil {
			cur = n.text == "true"
		}
		if *b.v != cur {
			doc.set(b.key, boolNode(*b.v), environmentOrder)
			parts = append(parts, b.key+" "+onOff(*b.v))
		}
	}
	prefix := env + ": settings "
	if len(parts) == 0 {
		return Result{Summary: prefix + "no change"}, nil
	}
	return Result{Changes: changes(path, old, doc), Summary: prefix + strings.Join(parts, ", ")}, nil
}
