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
	s.publishing.Lock()
	defer s.publishing.Unlock()
	var prev *served.State
	if cur := s.current.Load(); cur != nil {
		prev = cur.State
	}
	next, err := served.Build(snap, prev)
	if err != nil {
		return err
	}
	s.current.Store(newState(next))
	s.hub.NotifyChanged(prev, next)
	s.ws.fanout.Publish(next)
	s.metrics.published(snap.Revision.SHA, snap.Revision.Time)
	s.log.Debug("published", "revision", snap.Revision.SHA, "environments", len(snap.Environments), "features", len(snap.Features))
	return nil
}
