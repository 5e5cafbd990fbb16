package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// startBinary runs the gitflags binary bin with args and the admin token
// set, and returns the process and the base URL from its banner.
func startBinary(t *testing.T, bin string, args ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GITFLAGS_ADMIN_TOKEN=durability-token")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := regexp.MustCompile(`on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return cmd, m[1], stderr
		}
	}
	t.Fatalf("no banner; log:\n%s", stderr.String())
	return nil, "", nil
}

// TestWritesSurviveSIGKILL: the server is killed (SIGKILL) while writers
// keep writing; every write it acknowledged is in the repository's history,
// `git fsck` is clean, and the restarted server serves the branch head.
func TestWritesSurviveSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	tmp := t.TempDir()
	repo, data := filepath.Join(tmp, "flags"), filepath.Join(tmp, "data")
	if code, out, errOut := runCmd(t, "init", repo); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	_, key := environmentFile(t, repo, "staging")
	args := []string{"serve", "--listen", "127.0.0.1:0", "--repo", repo, "--data", data}
	cmd, base, _ := startBinary(t, bin, args...)

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"feature": {"name": "api_rate_limit"}, "enabled": true, "value": {"type": "integer", "value": "%d"}}`, 100000+w*10000+i)
				req, _ := http.NewRequest(http.MethodPost, base+"/api/experiments/environments/"+key+"/update-flag-v1/", strings.NewReader(body))
				req.Header.Set("Authorization", "Api-Key durability-token")
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusNoContent {
					mu.Lock()
					acked = append(acked, strings.Trim(resp.Header.Get("ETag"), `"`))
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, "40 acknowledged writes", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 40 })
	if err := cmd.Process.Kill(); err != nil { // SIGKILL, mid-stream
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()

	git(t, repo, "fsck", "--strict", "--no-dangling")
	out, err := exec.Command("git", "-C", repo, "rev-list", "main").Output()
	if err != nil {
		t.Fatal(err)
	}
	inHistory := map[string]bool{}
	for _, c := range strings.Fields(string(out)) {
		inHistory[c] = true
	}
	for _, rev := range acked {
		if !inHistory[rev] {
			t.Errorf("acknowledged write %s is not in the history of main", rev)
		}
	}
	t.Logf("%d writes acknowledged before the kill; main has %d commits", len(acked), len(inHistory))

	// The restarted server serves the head of main, including every
	// acknowledged write.
	_, base, _ = startBinary(t, bin, args...)
	head, err := exec.Command("git", "-C", repo, "rev-parse", "main").Output()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), strings.TrimSpace(string(head))) {
		t.Errorf("after the restart /readyz says %s, want revision %s", b, head)
	}
}
