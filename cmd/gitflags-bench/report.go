package main

import (
	"fmt"
	"io"
	"strings"
)

// printTable writes the report as a Markdown table, ready for the README.
func printTable(w io.Writer, rep *report) {
	how := fmt.Sprintf("%d x %s s", rep.Config.Rounds, trimFloat(rep.Config.Duration))
	if rep.Config.Requests > 0 {
		how = fmt.Sprintf("%d x %d requests", rep.Config.Rounds, rep.Config.Requests)
	}
	serverProcs := "Go's default"
	if rep.Config.ServerProcs > 0 {
		serverProcs = fmt.Sprint(rep.Config.ServerProcs)
	}
	fmt.Fprintf(w, "gitflags-bench: %s (%s), %d CPUs %s; generator GOMAXPROCS %d, servers started by the tool GOMAXPROCS %s, client %s, %d connections, %s per target (+%s s warm-up each), medians\n",
		rep.Target, rep.Repo, rep.Machine.NProc, rep.Machine.CPUModel, rep.Config.Procs, serverProcs, rep.Config.Client,
		rep.Config.Connections, how, trimFloat(rep.Config.Warmup))
	fmt.Fprintf(w, "client key %s, ofrep-single flag %s; load average before %s, after %s\n\n",
		rep.Config.Key, rep.Config.Flag, rep.Machine.LoadAvgBefore, rep.Machine.LoadAvg)
	fmt.Fprintln(w, "| scenario | status | body bytes | baseline req/s | gitflags req/s | ratio | gitflags p50 | gitflags p90 | gitflags p99 | baseline p99 | server CPU/req (baseline) | failed |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	var skipped []string
	for _, r := range rep.Results {
		if r.Skipped != "" {
			skipped = append(skipped, fmt.Sprintf("- %s: %s", r.Name, r.Skipped))
			fmt.Fprintf(w, "| %s | %s | - | - | - | - | - | - | - | - | - | not measured |\n", r.Name, statusCell(r.Status))
			continue
		}
		g := r.Gitflags
		bRPS, bP99, ratio, failed := "-", "-", "-", g.failures()
		cpu := "-"
		if g.ServerCPUUS > 0 {
			cpu = fmt.Sprintf("%.1f us", g.ServerCPUUS)
		}
		if b := r.Baseline; b != nil {
			bRPS, bP99, ratio = thousands(b.RPS), fmtUS(b.P99US), fmt.Sprintf("%.0f%%", r.RatioPercent)
			failed += b.failures()
			if b.ServerCPUUS > 0 {
				cpu += fmt.Sprintf(" (%.1f us)", b.ServerCPUUS)
			}
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n",
			r.Name, r.Status, r.ResponseBytes, bRPS, thousands(g.RPS), ratio,
			fmtUS(g.P50US), fmtUS(g.P90US), fmtUS(g.P99US), bP99, cpu, failed)
	}
	fmt.Fprintln(w)
	if rep.ServerRSSBytes > 0 {
		fmt.Fprintf(w, "gitflags server peak RSS (VmHWM): %.1f MiB\n", float64(rep.ServerRSSBytes)/(1<<20))
	}
	if rep.BaselineRSSBytes > 0 {
		fmt.Fprintf(w, "baseline server peak RSS (VmHWM, largest): %.1f MiB\n", float64(rep.BaselineRSSBytes)/(1<<20))
	}
	for _, r := range rep.Results {
		for _, st := range []*runStats{r.Baseline, r.Gitflags} {
			if st != nil && st.failures() > 0 {
				fmt.Fprintf(w, "%s: %d transport errors, unexpected status %v %s\n", r.Name, st.Errors, st.Unexpected, st.ErrorSample)
			}
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintln(w, "not measured:")
		fmt.Fprintln(w, strings.Join(skipped, "\n"))
	}
}

func statusCell(s int) string {
	if s == 0 {
		return "-"
	}
	return fmt.Sprint(s)
}

// fmtUS formats microseconds as a short duration.
func fmtUS(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 100e3:
		return fmt.Sprintf("%.0f ms", us/1e3)
	case us >= 10e3:
		return fmt.Sprintf("%.1f ms", us/1e3)
	case us >= 1e3:
		return fmt.Sprintf("%.2f ms", us/1e3)
	default:
		return fmt.Sprintf("%.0f us", us)
	}
}

// thousands formats a rate as an integer with comma separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".")
}
