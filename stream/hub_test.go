package stream

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func notified(s *Subscription) bool {
	select {
	case <-s.Notified():
		return true
	default:
		return false
	}
}

// TestNotifyCoalesces: a subscriber that does not consume its wake-ups
// never blocks Notify, holds one pending wake-up and reads the newest
// event only.
func TestNotifyCoalesces(t *testing.T) {
	h := NewHub()
	defer h.Close()
	s, err := h.Subscribe("production")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Latest() != nil || notified(s) {
		t.Fatal("a new subscription has an event")
	}
	for i := range 1000 { // would block on the first if Notify blocked
		h.Notify("production", Event{Revision: fmt.Sprint(i)})
	}
	if !notified(s) {
		t.Fatal("no wake-up after 1000 notifications")
	}
	if notified(s) {
		t.Error("more than one pending wake-up")
	}
	if got := s.Latest().Revision; got != "999" {
		t.Errorf("latest event is revision %s, want 999", got)
	}
	// A later event wakes it again.
	h.Notify("production", Event{Revision: "1000"})
	if !notified(s) || s.Latest().Revision != "1000" {
		t.Errorf("after a new event: not woken, or latest %v", s.Latest())
	}
}

// TestNotifyOnlyItsEnvironment: subscribers of another environment are
// neither woken nor given the event.
func TestNotifyOnlyItsEnvironment(t *testing.T) {
	h := NewHub()
	defer h.Close()
	prod, _ := h.Subscribe("production")
	stg, _ := h.Subscribe("staging")
	defer prod.Close()
	defer stg.Close()
	h.Notify("production", Event{Revision: "a"})
	h.Notify("nobody", Event{Revision: "b"})
	if !notified(prod) {
		t.Error("production subscriber not woken")
	}
	if notified(stg) || stg.Latest() != nil {
		t.Errorf("staging subscriber woken by a production event: latest %v", stg.Latest())
	}
}

// TestManySubscribers: every one of many subscribers, subscribing and
// leaving concurrently with notifications, sees the last event.
func TestManySubscribers(t *testing.T) {
	h := NewHub()
	defer h.Close()
	const n = 5000
	subs := make([]*Subscription, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := h.Subscribe([]string{"a", "b"}[i%2])
			if err != nil {
				t.Error(err)
				return
			}
			subs[i] = s
			h.Notify("a", Event{Revision: "early"})
		}()
	}
	wg.Wait()
	if got := h.Subscribers(""); got != n {
		t.Fatalf("%d subscribers, want %d", got, n)
	}
	if got := h.Subscribers("a"); got != n/2 {
		t.Fatalf("%d subscribers of a, want %d", got, n/2)
	}
	h.Notify("a", Event{Revision: "last"})
	for i, s := range subs {
		if i%2 == 1 {
			if s.Latest() != nil {
				t.Fatalf("subscriber %d of b has event %v", i, s.Latest())
			}
			continue
		}
		if !notified(s) || s.Latest().Revision != "last" {
			t.Fatalf("subscriber %d: latest %v", i, s.Latest())
		}
	}
	for _, s := range subs {
		s.Close()
		s.Close() // idempotent
	}
	if got := h.Subscribers(""); got != 0 {
		t.Errorf("%d subscribers after every Close", got)
	}
}

// TestClose: Done closes, Subscribe fails, Notify is harmless.
func TestClose(t *testing.T) {
	h := NewHub()
	s, _ := h.Subscribe("production")
	h.Close()
	h.Close()
	select {
	case <-h.Done():
	default:
		t.Fatal("Done not closed")
	}
	if _, err := h.Subscribe("production"); err != ErrClosed {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	h.Notify("production", Event{})
	s.Close()
}

// TestNotifyChanged: of two successive served states, the environments
// whose digest changed are notified with the new one, the others hear
// nothing, and a removed environment is notified as removed.
func TestNotifyChanged(t *testing.T) {
	h := NewHub()
	defer h.Close()
	p := &publisher{t: t}
	r := readTemplate(t)
	prev := p.revision(r)
	h.NotifyChanged(nil, prev) // the first state: nobody to notify
	subs := map[string]*Subscription{}
	for _, env := range []string{"production", "staging", "development"} {
		s, err := h.Subscribe(env)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs[env] = s
	}
	setValue(t, r, "production", "max_cart_items", 3)
	next := p.revision(r)
	h.NotifyChanged(prev, next)
	if !notified(subs["production"]) {
		t.Fatal("production changed and was not notified")
	}
	if ev := subs["production"].Latest(); ev.Revision != next.Revision().SHA || ev.Digest != next.Env("production").Digest() || !ev.Updated.Equal(next.Updated()) || ev.Removed {
		t.Errorf("production's event %+v", ev)
	}
	if notified(subs["staging"]) || notified(subs["development"]) {
		t.Error("an environment the revision did not change was notified")
	}
	for path := range r {
		if strings.HasPrefix(path, "environments/staging/") {
			delete(r, path)
		}
	}
	prev, next = next, p.revision(r)
	h.NotifyChanged(prev, next)
	if !notified(subs["staging"]) || !subs["staging"].Latest().Removed {
		t.Errorf("staging removed: event %+v", subs["staging"].Latest())
	}
	if notified(subs["production"]) || notified(subs["development"]) {
		t.Error("removing staging notified another environment")
	}
}
