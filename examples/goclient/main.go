// Command goclient connects to a running `gitflags serve` with package
// client, prints the evaluated flags, then every change until interrupted.
//
//	go run ./examples/goclient -key prd_Vn4sT8wQ1zLk6PjH9rXc -identifier u1 -trait plan=pro -trait lifetime_value=5000
//
// Trait values that parse as JSON (numbers, true, false) are sent as such,
// others as strings.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gitflags/gitflags/client"
)

type traitFlags map[string]any

func (t traitFlags) String() string { return fmt.Sprint(map[string]any(t)) }

func (t traitFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, not %q", s)
	}
	var j any
	if err := json.Unmarshal([]byte(v), &j); err == nil {
		if _, isObj := j.(map[string]any); !isObj {
			if _, isArr := j.([]any); !isArr {
				t[k] = j
				return nil
			}
		}
	}
	t[k] = v
	return nil
}

func main() {
	traits := traitFlags{}
	url := flag.String("url", "http://127.0.0.1:8080", "the gitflags server")
	key := flag.String("key", os.Getenv("GITFLAGS_KEY"), "environment key (default $GITFLAGS_KEY)")
	identifier := flag.String("identifier", "", "subscribe as this identity (default: the environment's flags)")
	flag.Var(traits, "trait", "a trait key=value sent with the subscription (repeatable; needs -identifier)")
	verbose := flag.Bool("v", false, "log connections and reconnections")
	flag.Parse()
	if *key == "" {
		fmt.Fprintln(os.Stderr, "goclient: -key is required (a client key from environments/<env>/environment.json)")
		os.Exit(2)
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := client.New(ctx, client.Options{URL: *url, Key: *key, Identifier: *identifier, Traits: traits, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(2)
	}
	defer c.Close()
	c.OnChange(func(ch client.Change) {
		fmt.Printf("%s revision %.12s\n", time.Now().Format(time.TimeOnly), ch.Revision)
		for _, k := range ch.Changed {
			f, _ := c.Flag(k)
			fmt.Printf("  changed %s\n", show(k, f))
		}
		for _, k := range ch.Removed {
			fmt.Printf("  removed %s\n", k)
		}
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.Wait(wctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(1)
	}
	flags := c.Flags()
	fmt.Printf("revision %s, %d flags\n", c.Revision(), len(flags))
	for _, k := range slices.Sorted(maps.Keys(flags)) {
		fmt.Printf("  %s\n", show(k, flags[k]))
	}
	<-c.Done() // interrupted, or a fatal error such as a 401
	if err := c.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(1)
	}
}

func show(k string, f client.Flag) string {
	v, _ := json.Marshal(f.Value)
	s := fmt.Sprintf("%-28s enabled=%-5v value=%s", k, f.Enabled, v)
	if f.Variant != "" {
		s += " variant=" + f.Variant
	}
	return s
}
