package httpapi

import (
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/served"
)

// Publish makes snap the served state: served.Build compiles it and encodes
// in advance every answer that does not depend on an identity, reusing the
// pieces of the previous state that did not change. The new state is
// swapped in atomically and handed to the streams: the event streams' hub
// notifies the environments whose answers changed, and the websocket
// fan-out re-evaluates what changed. On error the previous state keeps
// serving.
func (s *Server) Publish(snap *flagrepo.Snapshot) error {
	p := s.prepared.Swap(nil)
	if p != nil && p.snap == snap {
		<-p.done // built by Prepare while the write moved the branch
	}
	s.publishing.Lock()
	defer s.publishing.Unlock()
	var prev *served.State
	if cur := s.current.Load(); cur != nil {
		prev = cur.State
	}
	var next *served.State
	if p != nil && p.snap == snap && p.prev == prev && p.err == nil {
		next = p.state
	} else {
		var err error
		if next, err = served.Build(snap, prev); err != nil {
			return err
		}
	}
	s.current.Store(newState(next))
	s.hub.NotifyChanged(prev, next)
	s.ws.fanout.Publish(next)
	s.metrics.published(snap.Revision.SHA, snap.Revision.Time)
	s.log.Debug("published", "revision", snap.Revision.SHA, "environments", len(snap.Environments), "features", len(snap.Features))
	return nil
}

// Prepare starts building the served state of snap in the background, so
// that a Publish of the same snapshot right after only swaps it in: the
// write path calls it once a commit validates, and Git moves the branch
// meanwhile (commits.Options.Prepare). The state is built against the one
// served when the build runs; Publish builds afresh if another state was
// published since, or if snap is not the one prepared. Only the newest
// preparation is kept.
func (s *Server) Prepare(snap *flagrepo.Snapshot) {
	p := &preparedState{snap: snap, done: make(chan struct{})}
	s.prepared.Store(p)
	s.preparing.Add(1)
	go func() {
		defer s.preparing.Done()
		defer close(p.done)
		s.publishing.Lock()
		defer s.publishing.Unlock()
		if cur := s.current.Load(); cur != nil {
			p.prev = cur.State
		}
		p.state, p.err = served.Build(snap, p.prev)
	}()
}

// preparedState is a state Prepare builds; its fields are set before done
// is closed.
type preparedState struct {
	snap  *flagrepo.Snapshot
	done  chan struct{}
	prev  *served.State // the state it was built against
	state *served.State
	err   error
}
