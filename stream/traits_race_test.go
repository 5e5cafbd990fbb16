package stream

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestTraitChangesRaceSubscribes: stored traits changed (TraitsChanged)
// while subscribers subscribe and other changes of the same identity run:
// in the end every subscriber holds the flags of the last stored traits.
func TestTraitChangesRaceSubscribes(t *testing.T) {
	var mu sync.Mutex
	stored := map[string]any{"plan": "free", "lifetime_value": int64(5000)}
	hub := NewHub()
	t.Cleanup(hub.Close)
	p := &publisher{t: t, f: NewFanout(hub, FanoutOptions{Traits: func(context.Context, string, string) (map[string]any, error) {
		mu.Lock()
		read := map[string]any{"plan": stored["plan"], "lifetime_value": stored["lifetime_value"]}
		mu.Unlock()
		// A store takes a while to answer: the window in which another
		// change can overtake this read.
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		return read, nil
	}})}
	p.publish(readTemplate(t))
	set := func(plan string) {
		mu.Lock()
		stored["plan"] = plan
		mu.Unlock()
		p.f.TraitsChanged(context.Background(), "production", "u1")
	}

	var (
		wg   sync.WaitGroup
		subs = make(chan *Sub, 100)
	)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				set([]string{"free", "pro"}[(i+j)%2])
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				s, err := p.f.Subscribe(context.Background(), Context{Env: "production", Identifier: "u1"}, "", nil)
				if err != nil {
					t.Error(err)
					return
				}
				subs <- s
			}
		}()
	}
	wg.Wait()
	// No change after the last ones, which raced each other: every
	// subscriber must hold the flags of what the store holds now
	// (premium_customers matches "pro": max_cart_items 200; else the
	// environment's value).
	mu.Lock()
	want := any(nil)
	if stored["plan"] == "pro" {
		want = int64(200)
	}
	mu.Unlock()
	close(subs)
	for s := range subs {
		state := map[string]Flag{}
		for {
			select {
			case <-s.Notified():
			default:
			}
			m, ok := s.Take()
			if !ok {
				break
			}
			if m.Full != nil {
				state = map[string]Flag{}
				for k, v := range m.Full {
					state[k] = v
				}
			}
			for k, v := range m.Changed {
				state[k] = v
			}
		}
		if got := state["max_cart_items"].Value; (want != nil && got != want) || (want == nil && got == int64(200)) {
			t.Fatalf("a subscriber holds max_cart_items %v, but the stored traits (plan %v) say otherwise", got, stored["plan"])
		}
		s.Close()
	}
}
