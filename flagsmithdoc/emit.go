package flagsmithdoc

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/schemas"
)

// Result is an imported flag repository.
type Result struct {
	// Files holds every file of the repository by slash-separated path:
	// the documents and copies of the JSON Schemas their "$schema" names.
	Files map[string][]byte
	// Snapshot is the repository loaded and validated by flagrepo, as
	// `gitflags validate` does.
	Snapshot *flagrepo.Snapshot
	// Issues lists what could not be imported as it is (see Issue), in
	// source order. The repository holds everything else.
	Issues []Issue
	// Changes lists what was adapted without changing what is served.
	Changes []Issue
}

// Import reads Flagsmith environment documents (one per environment of one
// project) or feature export files and builds the equivalent flag
// repository. Input that cannot be read is an *InputError; what the
// repository cannot hold is listed in the Result's Issues.
func Import(sources []Source) (*Result, error) {
	if len(sources) == 0 {
		return nil, &InputError{Problems: []string{"no source given"}}
	}
	iss := &issues{}
	var envs []*envSrc
	var problems []string
	order := map[string]int{}
	for i, s := range sources {
		if _, dup := order[s.Name]; dup {
			problems = append(problems, s.Name+": given twice")
			continue
		}
		order[s.Name] = i
		e, ps := readSource(s, i, iss)
		problems = append(problems, ps...)
		if e != nil {
			envs = append(envs, e)
		}
	}
	if len(problems) > 0 {
		return nil, &InputError{Problems: problems}
	}
	c := &converter{envs: envs, iss: iss}
	if err := c.merge(); err != nil {
		return nil, err
	}
	c.checkOrganisation()
	c.checkFeatures()
	c.checkSegments()
	c.segmentKeys()
	p := &plan{droppedOv: map[*stateSrc]bool{}, droppedIdent: map[identRef]bool{}}
	for _, e := range envs {
		p.envs = append(p.envs, &envPlan{e: e})
	}
	c.envKeys(p)
	keys := c.exportClientKeys(p)
	for _, e := range envs {
		if !e.export && !validClientKey(e.apiKey) {
			c.iss.add(e.src, "/api_key", envWhat(e), "the environment key %q is not a valid gitflags client key (8 to 128 letters, digits, '_' or '-'); the environment is left out", e.apiKey)
			for _, ep := range p.envs {
				if ep.e == e {
					ep.bad = true
				}
			}
		}
	}
	// Validation may find more to leave out; each round plans again, and
	// only the last round's findings (those that depend on what was left
	// out) are kept.
	var res *Result
	persist := c.iss
	for round := 0; ; round++ {
		c.iss = &issues{}
		c.overrides(p)
		c.featureAbsences(p)
		files, prov := c.emit(p, keys)
		roundIssues := c.iss
		c.iss = persist
		snap, err := flagrepo.Load(flagrepo.WorkingRevision(), fileList(files), nil)
		if err == nil {
			res = &Result{Files: files, Snapshot: snap}
			for _, i := range roundIssues.issues {
				persist.push(&persist.issues, i)
			}
			for _, i := range roundIssues.changes {
				persist.push(&persist.changes, i)
			}
			break
		}
		var ve *flagrepo.ValidationError
		if !errors.As(err, &ve) {
			return nil, fmt.Errorf("load the imported repository: %w", err)
		}
		if round == 5 || !c.leaveOut(p, prov, ve.Problems) {
			lines := make([]string, len(ve.Problems))
			for i, pr := range ve.Problems {
				lines[i] = pr.String()
			}
			return nil, fmt.Errorf("the imported repository does not validate (a gitflags bug; please report it with the documents):\n  %s", strings.Join(lines, "\n  "))
		}
	}
	for _, f := range c.features {
		if !f.bad {
			c.checkVariantOrder(p, f)
		}
	}
	c.environmentChecks(p)
	sortIssues(iss.issues, order)
	sortIssues(iss.changes, order)
	res.Issues, res.Changes = iss.issues, iss.changes
	return res, nil
}

func validClientKey(k string) bool {
	if len(k) < 8 || len(k) > 128 || strings.HasPrefix(k, "ser.") {
		return false
	}
	for i, ch := range k {
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || i > 0 && (ch == '_' || ch == '-')
		if !ok {
			return false
		}
	}
	return true
}

// exportClientKeys makes client keys for the environments of feature
// export files, which carry none.
func (c *converter) exportClientKeys(p *plan) map[*envSrc]string {
	keys := map[*envSrc]string{}
	for _, ep := range p.envs {
		if !ep.e.export {
			continue
		}
		k := randomKey(22)
		keys[ep.e] = k
		c.iss.change(ep.e.src, "", envWhat(ep.e), "environment %q gets the new client key %s (a feature export file carries none): give it to your client SDKs", ep.key, k)
	}
	return keys
}

func randomKey(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		rand.Read(buf[:])
		for _, b := range buf {
			if b < 248 && len(out) < n {
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out)
}

// featureAbsences reports features an environment's document does not
// have: gitflags serves every feature in every environment.
func (c *converter) featureAbsences(p *plan) {
	for _, f := range c.features {
		if f.bad {
			continue
		}
		for _, ep := range p.envs {
			if !ep.bad && f.inEnv[ep.e] == nil {
				c.iss.add(ep.e.src, "/feature_states", what(f), "the environment's document has no state of it (other environments have one); gitflags serves every feature in every environment, so it is served here with its default state")
			}
		}
	}
}

// provenance maps the repository's files back to what they came from.
type provenance struct {
	features map[string]*feature         // by path
	segments map[string]*segment         // by path
	envs     map[string]*envPlan         // environment.json path
	states   map[string]*stateProvenance // environment feature file path
}

type stateProvenance struct {
	env     *envPlan
	feature *feature
	segOvs  []overrideRef
	idOvs   [][]identRef // by override, by identifier
}

// leaveOut leaves out what validation problems point at. It reports
// whether it left out anything.
func (c *converter) leaveOut(p *plan, prov *provenance, problems []flagrepo.Problem) bool {
	progress := false
	for _, pr := range problems {
		if f := prov.features[pr.File]; f != nil {
			if !f.bad {
				c.dropFeature(f, f.src.src, f.ptr, "gitflags refuses it: %s: %s", pr.Pointer, pr.Message)
				progress = true
			}
			continue
		}
		if g := prov.segments[pr.File]; g != nil {
			if !g.bad {
				c.iss.add(g.src.src, g.ptr, g.what(), "gitflags refuses it: %s: %s; the segment and its overrides are left out", pr.Pointer, pr.Message)
				g.bad = true
				progress = true
			}
			continue
		}
		if ep := prov.envs[pr.File]; ep != nil {
			if !ep.bad {
				c.iss.add(ep.e.src, "", envWhat(ep.e), "gitflags refuses it: %s: %s; the environment is left out", pr.Pointer, pr.Message)
				ep.bad = true
				progress = true
			}
			continue
		}
		sp := prov.states[pr.File]
		if sp == nil {
			continue
		}
		tokens := strings.Split(strings.TrimPrefix(pr.Pointer, "/"), "/")
		i, _ := atoi(safeIndex(tokens, 1))
		switch {
		case tokens[0] == "segment_overrides" && len(tokens) > 1 && i < len(sp.segOvs):
			o := sp.segOvs[i]
			if !p.droppedOv[o.st] {
				c.iss.add(sp.env.e.src, o.st.ptr, fmt.Sprintf("override of feature %q by segment %q", sp.feature.name, o.seg.name), "gitflags refuses it: %s; the override is left out", pr.Message)
				p.droppedOv[o.st] = true
				progress = true
			}
		case tokens[0] == "identity_overrides" && len(tokens) > 3 && i < len(sp.idOvs):
			j, _ := atoi(tokens[3])
			if j < len(sp.idOvs[i]) {
				ref := sp.idOvs[i][j]
				if !p.droppedIdent[ref] {
					c.iss.add(sp.env.e.src, ref.id.ptr, fmt.Sprintf("identity override %q of feature %q", ref.id.identifier, sp.feature.name), "gitflags refuses it: %s; the override is left out", pr.Message)
					p.droppedIdent[ref] = true
					progress = true
				}
			}
		default:
			if !sp.feature.bad {
				c.dropFeature(sp.feature, sp.env.e.src, sp.feature.inEnv[sp.env.e].ptr, "gitflags refuses its state in environment %q: %s: %s", sp.env.e.name, pr.Pointer, pr.Message)
				progress = true
			}
		}
	}
	return progress
}

func safeIndex(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

// The "$schema" of each kind of document, relative to the document (as
// `gitflags init` and the edit package write them).
const (
	settingsSchema    = "schemas/gitflags.schema.json"
	featureSchema     = "../schemas/feature.schema.json"
	segmentSchema     = "../schemas/segment.schema.json"
	environmentSchema = "../../schemas/environment.schema.json"
	stateSchema       = "../../../schemas/environment-feature.schema.json"
)

// Documents, with fields in the order a person writes them (the order of
// the template and of package edit).
type (
	settingsDoc struct {
		Schema        string     `json:"$schema"`
		FormatVersion int        `json:"format_version"`
		Project       projectDoc `json:"project"`
		Organisation  *orgDoc    `json:"organisation,omitempty"`
	}
	projectDoc struct {
		ID                int64  `json:"id"`
		Name              string `json:"name"`
		HideDisabledFlags bool   `json:"hide_disabled_flags,omitempty"`
	}
	orgDoc struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	featureDoc struct {
		Schema        string       `json:"$schema"`
		ID            int64        `json:"id"`
		Description   string       `json:"description,omitempty"`
		Default       defaultDoc   `json:"default"`
		Variants      []variantDoc `json:"variants,omitempty"`
		ServerKeyOnly bool         `json:"server_key_only,omitempty"`
	}
	defaultDoc struct {
		Enabled bool     `json:"enabled"`
		Value   optValue `json:"value,omitzero"`
	}
	variantDoc struct {
		ID     int64    `json:"id"`
		Key    string   `json:"key"`
		Value  optValue `json:"value"`
		Weight float64  `json:"weight,omitempty"`
	}
	segmentDoc struct {
		Schema      string    `json:"$schema"`
		ID          int64     `json:"id"`
		Description string    `json:"description,omitempty"`
		Rules       []ruleDoc `json:"rules"`
	}
	ruleDoc struct {
		Type       string    `json:"type"`
		Conditions []condDoc `json:"conditions,omitempty"`
		Rules      []ruleDoc `json:"rules,omitempty"`
	}
	condDoc struct {
		Property string  `json:"property,omitempty"`
		Operator string  `json:"operator"`
		Value    *string `json:"value,omitempty"`
	}
	environmentDoc struct {
		Schema            string `json:"$schema"`
		ID                int64  `json:"id"`
		Name              string `json:"name"`
		ClientKey         string `json:"client_key"`
		HideDisabledFlags *bool  `json:"hide_disabled_flags,omitempty"`
		HideSensitiveData bool   `json:"hide_sensitive_data,omitempty"`
		AllowClientTraits *bool  `json:"allow_client_traits,omitempty"`
	}
	stateDoc struct {
		Schema            string             `json:"$schema"`
		Enabled           *bool              `json:"enabled,omitempty"`
		Value             optValue           `json:"value,omitzero"`
		Weights           map[string]float64 `json:"weights,omitempty"`
		SegmentOverrides  []segOverrideDoc   `json:"segment_overrides,omitempty"`
		IdentityOverrides []idOverrideDoc    `json:"identity_overrides,omitempty"`
	}
	segOverrideDoc struct {
		Segment  string             `json:"segment"`
		Priority int                `json:"priority"`
		Enabled  bool               `json:"enabled"`
		Value    optValue           `json:"value,omitzero"`
		Weights  map[string]float64 `json:"weights,omitempty"`
	}
	idOverrideDoc struct {
		Identifiers []string `json:"identifiers"`
		Enabled     bool     `json:"enabled"`
		Value       optValue `json:"value,omitzero"`
	}
)

// optValue is a flag value that may be absent (IsZero) or null.
type optValue struct {
	set bool
	v   any
}

func some(v any) optValue { return optValue{set: true, v: v} }

func (o optValue) IsZero() bool { return !o.set }

func (o optValue) MarshalJSON() ([]byte, error) { return []byte(valueJSON(o.v)), nil }

// encodeDoc writes v as the repository's files are written: two-space
// indent, no HTML escaping, a final newline.
func encodeDoc(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("flagsmithdoc: encode %T: %v", v, err)) // documents hold only encodable values
	}
	return b.Bytes()
}

// emit writes the repository of the current plan.
func (c *converter) emit(p *plan, clientKeys map[*envSrc]string) (map[string][]byte, *provenance) {
	files := map[string][]byte{}
	prov := &provenance{features: map[string]*feature{}, segments: map[string]*segment{}, envs: map[string]*envPlan{}, states: map[string]*stateProvenance{}}

	for _, name := range schemas.Names() {
		data, err := fs.ReadFile(schemas.FS(), name)
		if err != nil {
			panic(fmt.Sprintf("flagsmithdoc: embedded schema %s: %v", name, err))
		}
		files["schemas/"+name] = data
	}

	settings := settingsDoc{Schema: settingsSchema, FormatVersion: flagrepo.FormatVersion}
	if q := c.project; q != nil {
		settings.Project = projectDoc{ID: q.id, Name: clip(q.name), HideDisabledFlags: q.hideDisabled}
		if q.org != nil {
			settings.Organisation = &orgDoc{ID: q.org.id, Name: clip(q.org.name)}
		}
	} else {
		settings.Project = projectDoc{ID: 1, Name: "Imported from Flagsmith"}
	}
	files["gitflags.json"] = encodeDoc(settings)

	var live []*envPlan
	for _, ep := range p.envs {
		if !ep.bad {
			live = append(live, ep)
		}
	}

	// Environments. Export files have no ids: they are numbered in order.
	for i, ep := range live {
		e := ep.e
		id := e.id
		if e.export {
			id = int64(i + 1)
		}
		doc := environmentDoc{Schema: environmentSchema, ID: id, Name: clip(e.name), ClientKey: e.apiKey, HideSensitiveData: e.hideSensitive}
		if e.export {
			doc.Name = ep.key
			doc.ClientKey = clientKeys[e]
		}
		if e.hideDisabled != nil && (c.project == nil || *e.hideDisabled != c.project.hideDisabled) {
			doc.HideDisabledFlags = e.hideDisabled
		}
		if !e.allowClientTraits {
			f := false
			doc.AllowClientTraits = &f
		}
		path := "environments/" + ep.key + "/environment.json"
		files[path] = encodeDoc(doc)
		prov.envs[path] = ep
	}

	// Segments.
	for _, g := range c.segments {
		if g.bad {
			continue
		}
		path := "segments/" + g.key + ".json"
		files[path] = encodeDoc(segmentDoc{Schema: segmentSchema, ID: g.id, Rules: ruleDocs(g.rules)})
		prov.segments[path] = g
	}

	// Features: ids and variant keys first (they depend on the overrides
	// kept), then each feature's default and its state per environment.
	c.assignIDs(p)
	for _, f := range c.features {
		if f.bad {
			continue
		}
		c.variantKeys(f)
		var first *stateSrc
		for _, ep := range live {
			if st := f.inEnv[ep.e]; st != nil {
				first = st
				break
			}
		}
		if first == nil {
			continue // its environments were left out
		}
		def := weightsOf(f, first)
		doc := featureDoc{Schema: featureSchema, ID: f.outID, Default: defaultDoc{Enabled: first.enabled, Value: some(first.value)}, ServerKeyOnly: f.server}
		if first.value == nil {
			doc.Default.Value = optValue{} // absent means null
		}
		for _, o := range f.options {
			doc.Variants = append(doc.Variants, variantDoc{ID: o.id, Key: o.vkey, Value: some(o.value), Weight: def[o.vkey]})
		}
		path := "features/" + f.name + ".json"
		files[path] = encodeDoc(doc)
		prov.features[path] = f

		for _, ep := range live {
			st := f.inEnv[ep.e]
			if st == nil {
				continue
			}
			sd := stateDoc{Schema: stateSchema}
			if st.enabled != first.enabled {
				b := st.enabled
				sd.Enabled = &b
			}
			if valueJSON(st.value) != valueJSON(first.value) {
				sd.Value = some(st.value)
			}
			if len(f.options) > 0 {
				if w := weightsOf(f, st); !sameWeights(w, def) {
					sd.Weights = w
				}
				if len(st.mv) == 0 {
					c.iss.change(ep.e.src, st.ptr+"/multivariate_feature_state_values", what(f), "the environment's state has no multivariate values (Flagsmith serves its value with no variant); gitflags splits with every weight 0, serving the same value, reported as variant \"control\"")
				}
			}
			sp := &stateProvenance{env: ep, feature: f}
			ovs := ep.segOvs[f]
			prios, renumbered := priorities(ep.e, ovs)
			if renumbered {
				c.iss.change(ep.e.src, ovs[0].st.ptr, what(f), "its segment overrides in environment %q have missing, repeated or out-of-range priorities; they get priorities 0 to %d in the order Flagsmith's engine applies them", ep.e.name, len(ovs)-1)
			}
			order := make([]int, len(ovs))
			for i := range order {
				order[i] = i
			}
			sort.SliceStable(order, func(a, b int) bool { return prios[order[a]] < prios[order[b]] })
			for _, i := range order {
				o := ovs[i]
				od := segOverrideDoc{Segment: o.seg.key, Priority: prios[i], Enabled: o.st.enabled, Value: some(o.st.value)}
				if len(o.st.mv) > 0 {
					od.Weights = weightsOf(f, o.st)
				}
				sd.SegmentOverrides = append(sd.SegmentOverrides, od)
				sp.segOvs = append(sp.segOvs, o)
			}
			sd.IdentityOverrides, sp.idOvs = identityOverrideDocs(ep.idOvs[f], p)
			if sd.Enabled == nil && !sd.Value.set && sd.Weights == nil && len(sd.SegmentOverrides) == 0 && len(sd.IdentityOverrides) == 0 {
				continue
			}
			path := "environments/" + ep.key + "/features/" + f.name + ".json"
			files[path] = encodeDoc(sd)
			prov.states[path] = sp
		}
	}
	return files, prov
}

// identityOverrideDocs groups identity overrides with the same state, in
// the order of their first identifier.
func identityOverrideDocs(refs []identRef, p *plan) ([]idOverrideDoc, [][]identRef) {
	var docs []idOverrideDoc
	var srcs [][]identRef
	at := map[string]int{}
	for _, ref := range refs {
		if p.droppedIdent[ref] {
			continue
		}
		k := strconv.FormatBool(ref.st.enabled) + valueJSON(ref.st.value)
		i, ok := at[k]
		if !ok || len(docs[i].Identifiers) == maxIdentifiers {
			i = len(docs)
			at[k] = i
			docs = append(docs, idOverrideDoc{Enabled: ref.st.enabled, Value: some(ref.st.value)})
			srcs = append(srcs, nil)
		}
		docs[i].Identifiers = append(docs[i].Identifiers, ref.id.identifier)
		srcs[i] = append(srcs[i], ref)
	}
	return docs, srcs
}

// weightsOf is a state's split by variant key (0 for options it lacks).
func weightsOf(f *feature, st *stateSrc) map[string]float64 {
	if len(f.options) == 0 {
		return nil
	}
	w := make(map[string]float64, len(f.options))
	for _, o := range f.options {
		w[o.vkey] = 0
	}
	for _, m := range st.mv {
		if o := f.optByID[m.optID]; o != nil {
			w[o.vkey] = m.weight
		}
	}
	return w
}

func sameWeights(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func ruleDocs(rs []ruleSrc) []ruleDoc {
	if len(rs) == 0 {
		return nil
	}
	out := make([]ruleDoc, len(rs))
	for i, r := range rs {
		out[i] = ruleDoc{Type: r.typ, Rules: ruleDocs(r.rules)}
		for _, cd := range r.conds {
			out[i].Conditions = append(out[i].Conditions, condDoc{Property: cd.prop, Operator: cd.op, Value: cd.value})
		}
	}
	return out
}

// clip shortens a name to what the repository allows.
func clip(s string) string {
	if len(s) <= maxNameLen {
		return s
	}
	for i := maxNameLen; i > 0; i-- {
		if (s[i] & 0xC0) != 0x80 {
			return s[:i]
		}
	}
	return s[:maxNameLen]
}

func fileList(files map[string][]byte) []flagrepo.File {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make([]flagrepo.File, len(paths))
	for i, p := range paths {
		data := files[p]
		out[i] = flagrepo.File{Path: p, Mode: flagrepo.ModeRegular, Size: int64(len(data)), Read: func() ([]byte, error) { return data, nil }}
	}
	return out
}

// WriteDir writes the repository's files under dir, which must not exist
// or be empty. Nothing is left behind when it fails.
func (r *Result) WriteDir(dir string) error { return writeFiles(dir, r.Files) }

// writeFiles writes files (by slash-separated path) under dir, which must
// not exist or be empty. Nothing is left behind when it fails.
func writeFiles(dir string, files map[string][]byte) error {
	entries, err := os.ReadDir(dir)
	created := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		created = true
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty (it holds %s); give a new or empty directory", dir, entries[0].Name())
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		target := filepath.Join(dir, filepath.FromSlash(p))
		err := os.MkdirAll(filepath.Dir(target), 0o755)
		if err == nil {
			err = os.WriteFile(target, files[p], 0o644)
		}
		if err != nil {
			if created {
				os.RemoveAll(dir)
			} else {
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					os.RemoveAll(filepath.Join(dir, e.Name()))
				}
			}
			return fmt.Errorf("write %s: %w", target, err)
		}
	}
	return nil
}
