package benchmarks

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// MemoryResult is the C2's memory with many registered clients.
type MemoryResult struct {
	Clients int
	// RSS is the process's resident set (VmRSS) with the C2 service
	// started on the log of Clients registrations, after a GC; Base is the
	// RSS before the service was started (the same-run baseline).
	RSS, Base uint64
	// Sys is runtime.MemStats.Sys and HeapInuse the live heap, same moment.
	Sys, HeapInuse uint64
	// Setup is the time to register the clients (durable, concurrent).
	Setup time.Duration
	// Start is the time for c2.New to replay the log.
	Start time.Duration
}

// ReadRSS returns VmRSS of this process from /proc/self/status, in bytes.
func ReadRSS() (uint64, error) {
	return procStatus("VmRSS:")
}

func procStatus(field string) (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, field) {
			continue
		}
		fs := strings.Fields(line[len(field):])
		if len(fs) != 2 || fs[1] != "kB" {
			return 0, fmt.Errorf("read rss: unexpected line %q", line)
		}
		kb, err := strconv.ParseUint(fs[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read rss: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("read rss: no %s in /proc/self/status", field)
}

// Memory registers n clients through a C2 service on a boltstore in a
// temporary directory under dir (concurrently, so group commit shares the
// fsyncs), closes it, and measures the RSS of a C2 service started again on
// that log, as after a restart.
// auditMax bounds the in-memory audit trail (c2.Config.AuditMax; 0 is
// unlimited; the server passes its audit_memory setting, 100,000 by
// default).
func Memory(ctx context.Context, dir string, n, auditMax int, progress func(done, total int)) (res MemoryResult, err error) {
	res.Clients = n
	tmp, err := os.MkdirTemp(dir, "e4c2-bench-mem-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	s := standard.New()
	env, err := openC2(ctx, tmp, s, core.SymKey, nil, auditMax)
	if err != nil {
		return res, err
	}
	master := append([]byte(nil), env.master...)
	const batch = 10_000
	t0 := time.Now()
	for i := 0; i < n; i += batch {
		m := min(batch, n-i)
		names, keys := make([]string, m), make([][]byte, m)
		for j := range m {
			names[j] = fmt.Sprintf("mem-%d", i+j)
			keys[j] = must(s.GenerateKey())
		}
		var done atomic.Int64
		done.Store(int64(i))
		if err := registerClients(ctx, env.Svc, names, keys, 256, func() {
			if d := int(done.Add(1)); progress != nil && d%500 == 0 {
				progress(d, n)
			}
		}); err != nil {
			env.Close()
			return res, err
		}
	}
	res.Setup = time.Since(t0)
	if progress != nil {
		progress(n, n)
	}
	if err := env.Close(); err != nil {
		return res, err
	}
	env = nil
	runtime.GC()
	debug.FreeOSMemory()
	if res.Base, err = ReadRSS(); err != nil {
		return res, err
	}
	t0 = time.Now()
	env, err = openC2(ctx, tmp, s, core.SymKey, master, auditMax)
	if err != nil {
		return res, err
	}
	defer env.Close()
	res.Start = time.Since(t0)
	if got := env.Svc.CountClients(); got != n {
		return res, fmt.Errorf("service sees %d clients, want %d", got, n)
	}
	runtime.GC()
	debug.FreeOSMemory()
	if res.RSS, err = ReadRSS(); err != nil {
		return res, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.Sys, res.HeapInuse = ms.Sys, ms.HeapInuse
	runtime.KeepAlive(env)
	return res, nil
}
