package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/flagdiff"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/previews"
	"github.com/gitflags/gitflags/served"
)

// Previews of branches (package previews): the SDK API and OFREP answer for
// a branch that is not served when the request carries
//
//	X-Gitflags-Ref: <branch>
//
// and a server key whose entry in the served environment.json has
// "previews": true. The environment is the key's environment, as the
// branch defines it. Answers carry X-Gitflags-Ref and X-Gitflags-Revision
// (the branch head they were computed from). A preview stores nothing:
// traits sent to the identity endpoints are used, not stored.
//
// GET /api/v1/proposals/{branch} (admin, read) says what a branch changes
// against the served revision (the semantic diff of gitflags diff, as JSON)
// and whether it validates.

// PreviewHeader names the branch a request previews.
const PreviewHeader = "X-Gitflags-Ref"

// AttachPreviews lets requests preview branches (see PreviewHeader).
func (s *Server) AttachPreviews(p *previews.Set) { s.previews.Store(p) }

// BuildPreview builds the served state of a branch's snapshot against the
// state served now, serialised with Publish (they share pieces): the Build
// of previews.Options.
func (s *Server) BuildPreview(snap *flagrepo.Snapshot) (*served.State, error) {
	s.publishing.Lock()
	defer s.publishing.Unlock()
	var prev *served.State
	if cur := s.current.Load(); cur != nil {
		prev = cur.State
	}
	return served.Build(snap, prev)
}

// previewError is why a preview was refused, with its status.
type previewError struct {
	status int
	msg    string
}

// preview returns, for a request with PreviewHeader, the branch's state
// and its environment for the key that resolved to es in the served state
// (nil, nil, nil without the header).
func (s *Server) preview(r *http.Request, key string, es *envState, server bool) (*state, *envState, *previewError) {
	branch := r.Header.Get(PreviewHeader)
	if branch == "" {
		return nil, nil, nil
	}
	p := s.previews.Load()
	if p == nil {
		return nil, nil, &previewError{http.StatusNotFound, "this server previews no branches (start it with --preview-branches)"}
	}
	if !server || !previewKey(es, key) {
		return nil, nil, &previewError{http.StatusForbidden, fmt.Sprintf(`%s needs a server-side key whose entry in environments/%s/environment.json (as served) has "previews": true`, PreviewHeader, es.Key())}
	}
	pst, err := p.State(r.Context(), branch)
	var ve *flagrepo.ValidationError
	switch {
	case errors.Is(err, previews.ErrNotPreviewable):
		return nil, nil, &previewError{http.StatusForbidden, err.Error()}
	case errors.Is(err, previews.ErrUnknownBranch):
		return nil, nil, &previewError{http.StatusNotFound, err.Error()}
	case errors.As(err, &ve):
		return nil, nil, &previewError{http.StatusConflict, fmt.Sprintf("branch %s does not validate, so it cannot be previewed: %s", branch, problemsText(ve.Problems))}
	case err != nil:
		if r.Context().Err() == nil {
			s.log.Error("building a preview", "branch", branch, "error", err)
		}
		return nil, nil, &previewError{http.StatusInternalServerError, fmt.Sprintf("preview of %s failed: %v", branch, err)}
	}
	pes := pst.Env(es.Key())
	if pes == nil {
		return nil, nil, &previewError{http.StatusNotFound, fmt.Sprintf("branch %s has no environment %q", branch, es.Key())}
	}
	return &state{State: pst, snap: pst.Snapshot(), updatedAt: []string{epochSeconds(pst.Updated())}, preview: branch}, pes, nil
}

// previewKey reports whether key, a server key of es, may preview.
func previewKey(es *envState, key string) bool {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	for _, k := range es.Environment().ServerKeys {
		if k.SHA256 == h {
			return k.Previews
		}
	}
	return false
}

// markPreview adds the preview headers to an answer computed from st.
func markPreview(w http.ResponseWriter, st *state) {
	if st != nil && st.preview != "" {
		h := w.Header()
		h.Set(PreviewHeader, st.preview)
		h.Set("X-Gitflags-Revision", st.snap.Revision.SHA)
	}
}

// problemsText lists validation problems in one line (the first five).
func problemsText(ps []flagrepo.Problem) string {
	var parts []string
	for i, p := range ps {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-5))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, "; ")
}

// proposal answers GET /api/v1/proposals/{branch}.
func (s *Server) proposal(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	branch := strings.TrimPrefix(ps.ByName("branch"), "/")
	p := s.previews.Load()
	if p == nil {
		writeDetail(w, http.StatusNotFound, "this server previews no branches (start it with --preview-branches)")
		return
	}
	report, head, err := p.Diff(branch)
	switch {
	case errors.Is(err, previews.ErrNotPreviewable):
		writeDetail(w, http.StatusForbidden, err.Error())
		return
	case errors.Is(err, previews.ErrUnknownBranch):
		writeDetail(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, previews.ErrNotReady):
		writeDetail(w, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil:
		writeDetail(w, http.StatusInternalServerError, fmt.Sprintf("comparing %s with the served revision failed: %v", branch, err))
		return
	}
	// A token limited to environments sees only branches that change those.
	if tok := callerToken(r); tok != nil && len(tok.Environments) > 0 && !reportOnlyIn(report, tok.Environments) {
		writeDetail(w, http.StatusForbidden, fmt.Sprintf("token %q is limited to the environments %s: branch %s changes others", tok.Name, strings.Join(tok.Environments, ", "), branch))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"branch":   branch,
		"revision": head.String(),
		"valid":    report.Head.Valid,
		"problems": report.Head.Problems,
		"diff":     report,
	})
}

// reportOnlyIn reports whether every change of a report is in one of envs
// (a repository-wide change is in none).
func reportOnlyIn(r *flagdiff.Report, envs []string) bool {
	for _, c := range r.Changes {
		if !slices.Contains(envs, c.Environment) {
			return false
		}
	}
	for _, f := range r.Files {
		if !onlyIn([]string{f.Path}, envs) {
			return false
		}
	}
	return true
}
