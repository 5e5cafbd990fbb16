package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/flagdiff"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/previews"
	"github.com/gitflags/gitflags/served"
	"github.com/gitflags/gitflags/stream"
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

// BuildPreview builds the served state of a branch's snapshot against prev
// (a state of that branch), or the state served now when prev is nil,
// serialised with Publish (they share pieces): the Build of
// previews.Options.
func (s *Server) BuildPreview(snap *flagrepo.Snapshot, prev *served.State) (*served.State, error) {
	s.publishing.Lock()
	defer s.publishing.Unlock()
	if cur := s.current.Load(); cur != nil && prev == nil {
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

// Streams of a branch: a websocket subscriber whose upgrade request carries
// PreviewHeader (and a key allowed previews) gets that branch's flags and
// their changes. Each branch with subscribers has its own fan-out, fed by a
// goroutine that checks the branch head every branchPollInterval and
// publishes each new head (built against the branch's previous state, so
// that only what changed between the two heads is re-evaluated). The
// goroutine ends with the branch's last subscriber.

// branchPollInterval is how often a streamed branch's head is checked.
const branchPollInterval = time.Second

// branchStream is the fan-out of one streamed branch.
type branchStream struct {
	fanout *stream.Fanout
	subs   int           // connections using it; guarded by wsStream.mu
	stop   chan struct{} // closed when the last connection leaves
}

// acquireBranch returns the fan-out of branch for a new connection,
// starting it at st (the branch's state) when the branch has none.
func (ws *wsStream) acquireBranch(branch string, st *served.State) *stream.Fanout {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	b := ws.branches[branch]
	if b == nil {
		b = &branchStream{fanout: ws.newFanout(), stop: make(chan struct{})}
		b.fanout.Publish(st)
		if ws.branches == nil {
			ws.branches = map[string]*branchStream{}
		}
		ws.branches[branch] = b
		ws.active.Add(1)
		go ws.followBranch(branch, b, st)
	}
	b.subs++
	return b.fanout
}

// releaseBranch is a connection to branch leaving.
func (ws *wsStream) releaseBranch(branch string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if b := ws.branches[branch]; b != nil {
		if b.subs--; b.subs == 0 {
			delete(ws.branches, branch)
			close(b.stop)
		}
	}
}

// followBranch publishes each new head of branch to its fan-out until the
// branch has no subscriber or the server shuts down.
func (ws *wsStream) followBranch(branch string, b *branchStream, last *served.State) {
	defer ws.active.Add(-1)
	t := time.NewTicker(branchPollInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-ws.s.hub.Done():
			return
		case <-t.C:
		}
		p := ws.s.previews.Load()
		if p == nil {
			continue
		}
		st, err := p.Follow(context.Background(), branch, last)
		if err != nil {
			// A branch deleted or broken keeps its last state; subscribers
			// get the next good head.
			ws.s.log.Debug("websocket stream: following a preview branch", "branch", branch, "error", err)
			continue
		}
		if st != last {
			b.fanout.Publish(st)
			last = st
		}
	}
}
