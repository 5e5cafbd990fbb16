package stream

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen/memrepo"
	"github.com/gitflags/gitflags/served"
)

// memRepo is a flag repository in memory (memrepo.Repo).
type memRepo = memrepo.Repo

func readTemplate(t testing.TB) memRepo {
	return memrepo.Read(t, filepath.Join("..", "flags-repo-template"))
}

// setValue sets feature's value in environment env of r.
func setValue(t testing.TB, r memRepo, env, feature string, value any) {
	t.Helper()
	path := "environments/" + env + "/features/" + feature + ".json"
	if _, ok := r[path]; ok {
		r.Edit(t, path, func(doc map[string]any) { doc["value"] = value })
	} else {
		r.Set(t, path, map[string]any{"value": value})
	}
}

// publisher publishes memRepo states as revisions 1, 2, ...
type publisher struct {
	t    testing.TB
	f    *Fanout
	snap *flagrepo.Snapshot
	st   *served.State
	n    int
}

// revision builds the served state of r from the one before.
func (p *publisher) revision(r memRepo) *served.State {
	p.t.Helper()
	p.n++
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: fmt.Sprintf("rev%d", p.n), Time: time.Unix(int64(p.n), 0)}, r.Files(), p.snap)
	if err != nil {
		p.t.Fatal(err)
	}
	st, err := served.Build(snap, p.st)
	if err != nil {
		p.t.Fatal(err)
	}
	p.snap, p.st = snap, st
	return st
}

func (p *publisher) publish(r memRepo) string {
	st := p.revision(r)
	p.f.Publish(st)
	return st.Revision().SHA
}

func newPublisher(t testing.TB) (*publisher, memRepo, *Hub) {
	hub := NewHub()
	t.Cleanup(hub.Close)
	p := &publisher{t: t, f: NewFanout(hub, FanoutOptions{})}
	r := readTemplate(t)
	p.publish(r)
	return p, r, hub
}

func take(t *testing.T, s *Sub) Message {
	t.Helper()
	select {
	case <-s.Notified():
	default:
		t.Fatal("not notified")
	}
	m, ok := s.Take()
	if !ok {
		t.Fatal("nothing to take")
	}
	return m
}

func idle(t *testing.T, s *Sub) {
	t.Helper()
	select {
	case <-s.Notified():
		if m, ok := s.Take(); ok {
			t.Fatalf("unexpected message %+v", m)
		}
	default:
	}
}

// TestCoalesce: a subscriber that does not take its outbox through three
// revisions gets one message with the newest value; one whose full state
// is still due gets the newest full state.
func TestCoalesce(t *testing.T) {
	p, r, _ := newPublisher(t)
	a, err := p.f.Subscribe(context.Background(), Context{Env: "production", Identifier: "u1"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if m := take(t, a); m.Full == nil || m.Revision != "rev1" || fmt.Sprint(m.Full["max_cart_items"].Value) != "50" {
		t.Fatalf("first message %+v", m)
	}
	b, _ := p.f.Subscribe(context.Background(), Context{Env: "production", Identifier: "u1"}, "", nil)
	defer b.Close()
	for _, v := range []int{7, 8, 9} {
		setValue(t, r, "production", "max_cart_items", v)
		p.publish(r)
	}
	m := take(t, a)
	if m.Full != nil || m.Revision != "rev4" || len(m.Changed) != 1 || fmt.Sprint(m.Changed["max_cart_items"].Value) != "9" || len(m.Removed) != 0 {
		t.Fatalf("coalesced message %+v, want max_cart_items 9 at rev4 only", m)
	}
	idle(t, a)
	m = take(t, b)
	if m.Full == nil || m.Revision != "rev4" || fmt.Sprint(m.Full["max_cart_items"].Value) != "9" {
		t.Fatalf("due full state %+v, want the newest", m)
	}
	if got := p.f.Contexts(); got != 1 {
		t.Errorf("%d contexts for one context", got)
	}
}

// TestOnlyChangedEnvironment: a revision changing staging evaluates
// nothing for production subscribers and sends them nothing.
func TestOnlyChangedEnvironment(t *testing.T) {
	p, r, _ := newPublisher(t)
	s, _ := p.f.Subscribe(context.Background(), Context{Env: "production", Identifier: "u1"}, "", nil)
	defer s.Close()
	take(t, s)
	before := p.f.Evaluations()
	setValue(t, r, "staging", "max_cart_items", 3)
	p.publish(r)
	if got := p.f.Evaluations(); got != before {
		t.Errorf("%d evaluations for a revision of another environment", got-before)
	}
	idle(t, s)
	// A change of production that does not change this identity's result
	// evaluates once and sends nothing.
	r["environments/production/features/max_cart_items.json"] = []byte(`{"segment_overrides": [{"segment": "premium_customers", "priority": 1, "enabled": true, "value": 300}]}`)
	p.publish(r)
	if got := p.f.Evaluations(); got != before+1 {
		t.Errorf("%d evaluations, want 1", got-before)
	}
}

// TestEndOnEnvironmentRemoved: subscribers of a removed environment get an
// end message.
func TestEndOnEnvironmentRemoved(t *testing.T) {
	p, r, _ := newPublisher(t)
	s, _ := p.f.Subscribe(context.Background(), Context{Env: "staging"}, "", nil)
	defer s.Close()
	take(t, s)
	for path := range r {
		if filepath.Dir(path) == "environments/staging" || filepath.Dir(filepath.Dir(path)) == "environments/staging" {
			delete(r, path)
		}
	}
	p.publish(r)
	if m := take(t, s); m.End == "" {
		t.Fatalf("message %+v, want the end", m)
	}
	if _, err := p.f.Subscribe(context.Background(), Context{Env: "staging"}, "", nil); err != ErrUnknownEnvironment {
		t.Errorf("subscribe to a removed environment: %v", err)
	}
}

// TestSubscribeAfterClose fails.
func TestSubscribeAfterClose(t *testing.T) {
	p, _, hub := newPublisher(t)
	hub.Close()
	if _, err := p.f.Subscribe(context.Background(), Context{Env: "production"}, "", nil); err != ErrClosed {
		t.Errorf("Subscribe after the hub closed: %v", err)
	}
}

// BenchmarkFanout: 1,000 subscribers with distinct contexts in one
// environment and a revision changing one feature's value (alternating
// between two revisions): the time and allocations of Publish handing
// every subscriber its change, and of each taking it.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			hub := NewHub()
			defer hub.Close()
			p := &publisher{t: b, f: NewFanout(hub, FanoutOptions{})}
			r := readTemplate(b)
			p.publish(r)
			setValue(b, r, "production", "max_cart_items", 1)
			revA := p.revision(r)
			setValue(b, r, "production", "max_cart_items", 2)
			revB := p.revision(r)
			p.f.Publish(revA)
			subs := make([]*Sub, n)
			for i := range subs {
				s, err := p.f.Subscribe(context.Background(), Context{Env: "production", Identifier: fmt.Sprintf("user-%d", i), Traits: map[string]any{"plan": "pro", "n": int64(i)}}, "", nil)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				s.Take()
				subs[i] = s
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				i++
				if i%2 == 0 {
					p.f.Publish(revA)
				} else {
					p.f.Publish(revB)
				}
				for _, s := range subs {
					<-s.Notified()
					if m, ok := s.Take(); !ok || len(m.Changed) != 1 {
						b.Fatalf("message %+v", m)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")
		})
	}
}
