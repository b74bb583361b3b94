// bench/anchor-go.go - anchor: Go 1.19 with GOMAXPROCS=2, in the two ways Go
// programs run small tasks: a goroutine per task (with a sync.WaitGroup, or
// with a buffered channel per task as its future) and a fixed pool of
// worker goroutines reading a channel.
//
//	anchor-go submit handle|wg|pool SUBMITTERS N   workloads 1, 2
//	anchor-go rt pool|go warm|cold N [GAP_US]      workload 3
//	anchor-go fib N CUTOFF                         workload 5
//	anchor-go imbal wg|pool N                      workload 6
//	anchor-go mem wg|pool N                        workload 7
//	anchor-go idle WORKERS MS                      workload 8
//
// Checks: handle checks every result; pool workers keep count, sum and sum
// of squares of their inputs, added up and compared at the end; wg relies
// on WaitGroup's exact count (a negative count panics, a missing Done
// hangs until the driver's timeout).  Output as the C programs: one RESULT
// line; a failed check prints CHECK FAILED and exits 2.
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "CHECK FAILED: "+format+"\n", a...)
	os.Exit(2)
}

func check(ok bool, format string, a ...interface{}) {
	if !ok {
		fail(format, a...)
	}
}

func argInt(i int, dflt int64) int64 {
	if len(os.Args) > i {
		v, err := strconv.ParseInt(os.Args[i], 10, 64)
		check(err == nil, "bad argument %q", os.Args[i])
		return v
	}
	return dflt
}

// The pool size of workload 1: BENCH_WORKERS (1 for the one-worker rows), 2
// by default.
func benchWorkers() int {
	if w, err := strconv.Atoi(os.Getenv("BENCH_WORKERS")); err == nil && w >= 1 && w <= 64 {
		return w
	}
	return 2
}

func arg(i int, dflt string) string {
	if len(os.Args) > i {
		return os.Args[i]
	}
	return dflt
}

func result(value float64, unit string, extra ...string) {
	fmt.Printf("RESULT value=%.6g unit=%s", value, unit)
	if len(extra) > 0 {
		fmt.Printf(" %s", strings.Join(extra, " "))
	}
	fmt.Println()
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec) + float64(ru.Utime.Usec)*1e-6 +
		float64(ru.Stime.Sec) + float64(ru.Stime.Usec)*1e-6
}

func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	check(err == nil, "read /proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

// Expected count, sum and sum of squares of the inputs 1..n (mod 2^64).
func expect(n uint64) (uint64, uint64) {
	a, b, c := n, n+1, 2*n+1
	if a%2 == 0 {
		a /= 2
	} else {
		b /= 2
	}
	if a%3 == 0 {
		a /= 3
	} else if b%3 == 0 {
		b /= 3
	} else {
		c /= 3
	}
	return n * (n + 1) / 2, a * b * c
}

type acct struct{ count, sum, sumsq uint64 }

func (a *acct) add(i uint64) { a.count++; a.sum += i; a.sumsq += i * i }

func checkAcct(parts []acct, n uint64) {
	var t acct
	for _, p := range parts {
		t.count += p.count
		t.sum += p.sum
		t.sumsq += p.sumsq
	}
	es, esq := expect(n)
	check(t.count == n, "%d tasks ran, expected %d", t.count, n)
	check(t.sum == es && t.sumsq == esq, "checksum mismatch: a task ran twice and another never")
}

// The same xorshift64* sequence as bench/common.h.
func expDurations(n int64, mean float64) ([]time.Duration, int64) {
	d := make([]time.Duration, n)
	s := uint64(0x9E3779B97F4A7C15)
	var total int64
	for i := range d {
		x := s
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		s = x
		u := float64((x*0x2545F4914F6CDD1D)>>11) * (1.0 / 9007199254740992.0)
		v := int64(-math.Log(1.0-u) * mean)
		d[i] = time.Duration(v)
		total += v
	}
	return d, total
}

func spin(d time.Duration) {
	start := time.Now()
	for time.Since(start) < d {
	}
}

// A fixed pool of worker goroutines on a channel.
type pool struct {
	jobs  chan uint64
	wg    sync.WaitGroup // one Done per job
	accts []acct
	quit  sync.WaitGroup
}

func newPool(workers int, buf int, work func(uint64)) *pool {
	p := &pool{jobs: make(chan uint64, buf), accts: make([]acct, workers)}
	p.quit.Add(workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			var a acct
			for j := range p.jobs {
				if work != nil {
					work(j)
				}
				a.add(j)
				p.wg.Done()
			}
			p.accts[w] = a
			p.quit.Done()
		}(w)
	}
	return p
}

func (p *pool) close() { close(p.jobs); p.quit.Wait() }

func runSubmit() {
	cls := arg(2, "handle")
	subs := argInt(3, 1)
	n := argInt(4, 1000000)
	var t0 time.Time
	var elapsed time.Duration
	switch cls {
	case "handle":
		chans := make([]chan uint64, n)
		var done sync.WaitGroup
		part := func(s int64) {
			lo, hi := 1+s*n/subs, 1+(s+1)*n/subs
			for i := lo; i < hi; i++ {
				ch := make(chan uint64, 1)
				chans[i-1] = ch
				go func(i uint64) { ch <- i * 3 }(uint64(i))
			}
			for i := lo; i < hi; i++ {
				r := <-chans[i-1]
				check(r == uint64(i)*3, "task %d returned %d", i, r)
			}
			done.Done()
		}
		t0 = time.Now()
		done.Add(int(subs))
		for s := int64(1); s < subs; s++ {
			go part(s)
		}
		part(0)
		done.Wait()
		elapsed = time.Since(t0)
	case "wg":
		var wg sync.WaitGroup
		var done sync.WaitGroup
		wg.Add(int(n))
		part := func(s int64) {
			lo, hi := 1+s*n/subs, 1+(s+1)*n/subs
			for i := lo; i < hi; i++ {
				go func() { wg.Done() }()
			}
			done.Done()
		}
		t0 = time.Now()
		done.Add(int(subs))
		for s := int64(1); s < subs; s++ {
			go part(s)
		}
		part(0)
		wg.Wait()
		elapsed = time.Since(t0)
		done.Wait()
	case "pool":
		p := newPool(benchWorkers(), 1024, nil)
		p.wg.Add(int(n))
		var done sync.WaitGroup
		part := func(s int64) {
			lo, hi := 1+s*n/subs, 1+(s+1)*n/subs
			for i := lo; i < hi; i++ {
				p.jobs <- uint64(i)
			}
			done.Done()
		}
		t0 = time.Now()
		done.Add(int(subs))
		for s := int64(1); s < subs; s++ {
			go part(s)
		}
		part(0)
		p.wg.Wait()
		elapsed = time.Since(t0)
		done.Wait()
		p.close()
		checkAcct(p.accts, uint64(n))
	default:
		fail("unknown class %s", cls)
	}
	result(float64(elapsed.Nanoseconds())/float64(n), "ns/task")
}

func runRT() {
	kind := arg(2, "pool")
	cold := arg(3, "warm") == "cold"
	n := argInt(4, 100000)
	gap := time.Duration(argInt(5, 2000)) * time.Microsecond
	lat := make([]int64, n)
	var sameThread int64
	jobs := make(chan uint64)
	results := make(chan [2]uint64)
	task := func(i uint64) [2]uint64 { return [2]uint64{i * 3, uint64(syscall.Gettid())} }
	if kind == "pool" {
		for w := 0; w < 2; w++ {
			go func() {
				for j := range jobs {
					results <- task(j)
				}
			}()
		}
	}
	c0 := cpuSeconds()
	for i := int64(0); i < n; i++ {
		if cold {
			time.Sleep(gap)
		}
		t := time.Now()
		me := uint64(syscall.Gettid())
		var r [2]uint64
		if kind == "pool" {
			jobs <- uint64(i + 1)
			r = <-results
		} else {
			ch := make(chan [2]uint64, 1)
			go func(i uint64) { ch <- task(i) }(uint64(i + 1))
			r = <-ch
		}
		lat[i] = time.Since(t).Nanoseconds()
		check(r[0] == uint64(i+1)*3, "round trip %d returned %d", i, r[0])
		if r[1] == me {
			sameThread++
		}
	}
	cpu := cpuSeconds() - c0
	close(jobs)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	q := func(f float64) int64 { return lat[int(f*float64(n-1)+0.5)] }
	// share: round trips whose task ran on the submitter's OS thread (Go
	// hands work to a goroutine, which may run on the same thread)
	result(float64(q(0.5)), "ns", fmt.Sprintf("p99=%d", q(0.99)),
		fmt.Sprintf("cpu_us=%.3f", cpu/float64(n)*1e6),
		fmt.Sprintf("share=%.4f", float64(sameThread)/float64(n)))
}

var cutoff int64
var fibTasks int64

func fibSerial(n int64) uint64 {
	if n < 2 {
		return uint64(n)
	}
	return fibSerial(n-1) + fibSerial(n-2)
}

func tasksOf(n int64) int64 {
	if n <= cutoff {
		return 1
	}
	return 1 + tasksOf(n-1) + tasksOf(n-2)
}

func fibTask(n int64) uint64 {
	atomic.AddInt64(&fibTasks, 1)
	if n <= cutoff {
		return fibSerial(n)
	}
	var x, y uint64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { x = fibTask(n - 1); wg.Done() }()
	go func() { y = fibTask(n - 2); wg.Done() }()
	wg.Wait()
	return x + y
}

func runFib() {
	n := argInt(2, 30)
	cutoff = argInt(3, 12)
	want, wantTasks := fibSerial(n), tasksOf(n)
	t0 := time.Now()
	var r uint64
	done := make(chan struct{})
	go func() { r = fibTask(n); close(done) }()
	<-done
	el := time.Since(t0)
	check(r == want, "fib(%d) = %d, expected %d", n, r, want)
	check(fibTasks == wantTasks, "%d tasks ran, expected %d", fibTasks, wantTasks)
	result(float64(el.Nanoseconds())/1e6, "ms", fmt.Sprintf("tasks=%d", fibTasks))
}

func runImbal() {
	kind := arg(2, "pool")
	n := argInt(3, 1000000)
	dur, total := expDurations(n, 1000)
	var el time.Duration
	if kind == "pool" {
		p := newPool(2, 1024, func(i uint64) { spin(dur[i-1]) })
		p.wg.Add(int(n))
		t0 := time.Now()
		for i := int64(1); i <= n; i++ {
			p.jobs <- uint64(i)
		}
		p.wg.Wait()
		el = time.Since(t0)
		p.close()
		checkAcct(p.accts, uint64(n))
	} else {
		var wg sync.WaitGroup
		wg.Add(int(n))
		t0 := time.Now()
		for i := int64(1); i <= n; i++ {
			go func(i int64) { spin(dur[i-1]); wg.Done() }(i)
		}
		wg.Wait()
		el = time.Since(t0)
	}
	result(float64(total)/2/float64(el.Nanoseconds()), "efficiency",
		fmt.Sprintf("wall_ms=%.2f", float64(el.Nanoseconds())/1e6))
}

func runMem() {
	kind := arg(2, "pool")
	n := argInt(3, 1000000)
	gate := make(chan struct{})
	var rss0, rss1 int64
	runtime.GC()
	if kind == "pool" {
		// both workers blocked in their first job; the channel holds the rest
		var started sync.WaitGroup
		started.Add(2)
		var once [2]sync.Once
		var blocker int32
		p := newPool(2, int(n), func(i uint64) {
			if i == 0 {
				b := atomic.AddInt32(&blocker, 1) - 1
				once[b].Do(started.Done)
				<-gate
			}
		})
		p.wg.Add(2)
		p.jobs <- 0
		p.jobs <- 0
		started.Wait()
		runtime.GC()
		rss0 = rssKB()
		p.wg.Add(int(n))
		for i := int64(1); i <= n; i++ {
			p.jobs <- uint64(i)
		}
		rss1 = rssKB()
		close(gate)
		p.wg.Wait()
		p.close()
		// the two blockers had input 0: they count but add nothing
		for w := range p.accts {
			if p.accts[w].count > 0 {
				p.accts[w].count--
				break
			}
		}
		for w := range p.accts {
			if p.accts[w].count > 0 && w > 0 {
				p.accts[w].count--
				break
			}
		}
		var t acct
		for _, a := range p.accts {
			t.count += a.count
		}
		checkAcct([]acct{{t.count, sumOf(p.accts), sumsqOf(p.accts)}}, uint64(n))
	} else {
		var wg sync.WaitGroup
		wg.Add(int(n))
		rss0 = rssKB()
		for i := int64(1); i <= n; i++ {
			go func() { <-gate; wg.Done() }()
		}
		rss1 = rssKB()
		close(gate)
		wg.Wait()
	}
	result(float64(rss1-rss0)*1024/float64(n), "B/task",
		fmt.Sprintf("rss_mb=%.1f", float64(rss1-rss0)/1024))
}

func sumOf(a []acct) uint64 {
	var s uint64
	for _, x := range a {
		s += x.sum
	}
	return s
}

func sumsqOf(a []acct) uint64 {
	var s uint64
	for _, x := range a {
		s += x.sumsq
	}
	return s
}

func runIdle() {
	workers := argInt(2, 8)
	ms := argInt(3, 1000)
	p := newPool(int(workers), 0, nil)
	p.wg.Add(int(workers))
	for i := int64(1); i <= workers; i++ {
		p.jobs <- uint64(i)
	}
	p.wg.Wait()
	c0 := cpuSeconds()
	t0 := time.Now()
	time.Sleep(time.Duration(ms) * time.Millisecond)
	cpu := cpuSeconds() - c0
	wall := time.Since(t0).Seconds()
	p.close()
	checkAcct(p.accts, uint64(workers))
	result(cpu/wall*100, "%cpu", fmt.Sprintf("cpu_ms=%.3f", cpu*1e3))
}

func main() {
	runtime.GOMAXPROCS(2)
	switch arg(1, "") {
	case "submit":
		runSubmit()
	case "rt":
		runRT()
	case "fib":
		runFib()
	case "imbal":
		runImbal()
	case "mem":
		runMem()
	case "idle":
		runIdle()
	default:
		fmt.Fprintln(os.Stderr, "usage: anchor-go submit|rt|fib|imbal|mem|idle ...")
		os.Exit(64)
	}
}
