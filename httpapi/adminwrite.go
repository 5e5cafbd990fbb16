package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/edit"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
)

// A write through the admin API is a commit (package commits): every write
// endpoint builds a commits.Request whose Edit calls package edit, and hands
// it to commitWrite, which adds the caller as author, If-Match and review
// (?propose=true, or an environment with review_required), runs it and
// answers errors. The endpoint writes its own success answer.

// AttachWriter gives the admin API the writer of the served repository (it
// writes through the Syncer, which publishes into this server, so it is made
// after it). Without one, write endpoints answer 409.
func (s *Server) AttachWriter(w *commits.Writer) { s.writer.Store(w) }

// writeTarget says where a write goes: the environment it changes ("" for a
// change to every environment, such as a feature's definition) and the
// feature or segment it is about, which names a proposal branch.
type writeTarget struct {
	env, subject string
}

// commitWrite runs req for the caller of r. On success it sets the ETag
// header to the new revision and returns the result; a proposal (review)
// has Result.Branch set and should be answered 202. On failure it has
// written the error answer and returns false.
func (s *Server) commitWrite(w http.ResponseWriter, r *http.Request, target writeTarget, req commits.Request) (commits.Result, bool) {
	writer := s.writer.Load()
	if writer == nil {
		writeDetail(w, http.StatusConflict, "this server cannot write: it serves a working directory (--watch-worktree) or a detached HEAD; serve a branch of a repository to write")
		return commits.Result{}, false
	}
	tok := callerToken(r)
	if tok == nil {
		writeDetail(w, http.StatusUnauthorized, "no admin token")
		return commits.Result{}, false
	}
	req.Author = object.Signature{Name: tok.Name, Email: tok.Email}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" {
		req.IfMatch = strings.Trim(strings.TrimPrefix(m, "W/"), `"`)
	}
	q, qerr := parseQuery(r.URL.RawQuery)
	if qerr != nil {
		writeDetail(w, qerr.status, qerr.msg)
		return commits.Result{}, false
	}
	switch v := q.Get("propose"); v {
	case "", "false":
	case "true":
		req.Propose = true
	default:
		writeDetail(w, http.StatusBadRequest, fmt.Sprintf("query parameter \"propose\": %q is not true or false", v))
		return commits.Result{}, false
	}
	req.Proposal = proposalName(target) // used when the write is proposed (asked, or review_required)
	res, err := writer.Write(r.Context(), req)
	if err != nil {
		s.writeFailed(w, r, err)
		return commits.Result{}, false
	}
	if res.Branch == "" { // a proposal's commit is not the branch head: no If-Match for it
		w.Header().Set("ETag", `"`+res.Revision+`"`)
	}
	if res.Unpushed > 0 { // break-glass: committed and served, not pushed yet
		w.Header().Set("X-Gitflags-Unpushed", strconv.Itoa(res.Unpushed))
	}
	return res, true
}

// proposalName is the name of a proposal branch's change:
// <env>/<subject>, or <subject> for a change to every environment.
func proposalName(t writeTarget) string {
	name := t.subject
	if name == "" {
		name = "change"
	}
	if t.env != "" {
		name = t.env + "/" + name
	}
	return name
}

// writeFailed answers the error of a write.
func (s *Server) writeFailed(w http.ResponseWriter, r *http.Request, err error) {
	var (
		input    *edit.InputError
		notFound *edit.NotFoundError
		invalid  *flagrepo.ValidationError
	)
	switch {
	case errors.As(err, &input):
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": input.Error(), "field": input.Field})
	case errors.As(err, &notFound):
		writeDetail(w, http.StatusNotFound, notFound.Error())
	case errors.As(err, &invalid):
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"detail":   fmt.Sprintf("the change would make the repository invalid (%d problem(s)); nothing was committed", len(invalid.Problems)),
			"problems": invalid.Problems,
		})
	case errors.Is(err, commits.ErrStale):
		writeDetail(w, http.StatusPreconditionFailed, err.Error())
	case errors.Is(err, commits.ErrConflict), errors.Is(err, commits.ErrNotWritable):
		writeDetail(w, http.StatusConflict, err.Error())
	case errors.Is(err, commits.ErrBusy):
		w.Header().Set("Retry-After", "1")
		writeDetail(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, gitstore.ErrRemoteUnavailable), errors.Is(err, gitstore.ErrCredentials):
		w.Header().Set("Retry-After", "10")
		writeDetail(w, http.StatusServiceUnavailable, "the write is not acknowledged: "+err.Error()+
			" (if the push timed out, the remote may have taken it all the same: check GET /api/v1/history before writing again)")
	case r.Context().Err() != nil:
		// The client went away; nothing more to say to it.
		s.log.Debug("write abandoned by its client", "path", r.URL.Path, "error", err)
	default:
		s.log.Error("write failed", "path", r.URL.Path, "error", err)
		writeDetail(w, http.StatusInternalServerError, "the write failed: "+err.Error())
	}
}

// readAdminBody reads and decodes the JSON body of an admin request into v,
// strictly: an unknown field is an error naming it. On failure it has
// written the 400 (or 413) and returns false.
func readAdminBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, rerr := readBody(w, r)
	if rerr == nil {
		rerr = decodeJSON(data, v)
	}
	if rerr == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(reflect.New(reflect.TypeOf(v).Elem()).Interface()); err != nil {
			rerr = badRequest("invalid request body: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return false
	}
	return true
}
