// bench/anchor-go-coro.go - workload C anchor: Go 1.19 goroutines on one
// thread (GOMAXPROCS=1), as conc's coroutines run on one loop thread.
//
//	anchor-go-coro yield N   2 goroutines runtime.Gosched() N times each: ns per yield
//	anchor-go-coro hop N     a token passed N times over unbuffered channels: ns per hop
//	anchor-go-coro spawn N   go f() + WaitGroup, batches of 1024: ns per goroutine
//	anchor-go-coro mem N     N goroutines parked in a channel receive with
//	                         256 B of live locals: (RSS + page tables) growth
//	                         per goroutine, bytes
//
// Checks as bench-coro.c: counts, the token's value, sums, every locals
// array; a failed check prints CHECK FAILED and exits 2.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "CHECK FAILED: "+format+"\n", a...)
	os.Exit(2)
}

func statusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail("status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			v, _ := strconv.ParseInt(f[0], 10, 64)
			return v
		}
	}
	return -1
}

func memNow() int64 { return (statusKB("VmRSS") + statusKB("VmPTE")) * 1024 }

//go:noinline
func fill(b *[256]byte, me int) {
	for i := range b {
		b[i] = byte(me + i)
	}
}

//go:noinline
func ok(b *[256]byte, me int) bool {
	for i := range b {
		if b[i] != byte(me+i) {
			return false
		}
	}
	return true
}

func main() {
	runtime.GOMAXPROCS(1)
	if len(os.Args) < 3 {
		fail("usage: anchor-go-coro yield|hop|spawn|mem N")
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n <= 0 {
		fail("bad N")
	}
	switch os.Args[1] {
	case "yield":
		var wg sync.WaitGroup
		cnt := [2]int{}
		wg.Add(2)
		t0 := time.Now()
		for k := 0; k < 2; k++ {
			go func(k int) {
				for i := 0; i < n; i++ {
					runtime.Gosched()
					cnt[k]++
				}
				wg.Done()
			}(k)
		}
		wg.Wait()
		d := time.Since(t0)
		if cnt[0] != n || cnt[1] != n {
			fail("yield counts %d %d", cnt[0], cnt[1])
		}
		fmt.Printf("RESULT value=%.3f unit=ns\n", float64(d.Nanoseconds())/float64(2*n))
	case "hop":
		n &^= 1
		a, b := make(chan int), make(chan int)
		done := make(chan int)
		t0 := time.Now()
		go func() {
			for i := 0; i < n/2; i++ {
				v := <-a
				b <- v + 2
			}
		}()
		go func() {
			v := 0
			for i := 0; i < n/2; i++ {
				a <- v
				v = <-b
			}
			done <- v
		}()
		v := <-done
		d := time.Since(t0)
		if v != n {
			fail("hop: token %d after %d hops", v, n)
		}
		fmt.Printf("RESULT value=%.3f unit=ns\n", float64(d.Nanoseconds())/float64(n))
	case "spawn":
		var wg sync.WaitGroup
		sum, done := 0, 0
		t0 := time.Now()
		for i := 0; i < n; {
			end := i + 1024
			if end > n {
				end = n
			}
			wg.Add(end - i)
			for ; i < end; i++ {
				go func(x int) { sum += x; done++; wg.Done() }(i)
			}
			wg.Wait()
		}
		d := time.Since(t0)
		if done != n || sum != n*(n-1)/2 {
			fail("spawn: %d ran, sum %d", done, sum)
		}
		fmt.Printf("RESULT value=%.3f unit=ns\n", float64(d.Nanoseconds())/float64(n))
	case "mem":
		ch := make(chan int)
		var parked, woken, bad, sum int
		var wg sync.WaitGroup
		runtime.GC()
		m0 := memNow()
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func(me int) {
				var locals [256]byte
				fill(&locals, me)
				parked++
				v := <-ch
				if !ok(&locals, me) {
					bad++
				}
				sum += v
				woken++
				wg.Done()
			}(i)
		}
		for parked < n {
			runtime.Gosched()
		}
		g := memNow() - m0
		for i := 0; i < n; i++ {
			ch <- i + 1
		}
		wg.Wait()
		if bad != 0 || woken != n || sum != n*(n+1)/2 {
			fail("mem: %d bad, %d woken, sum %d", bad, woken, sum)
		}
		fmt.Printf("RESULT value=%.0f unit=B\n", float64(g)/float64(n))
	default:
		fail("unknown mode %s", os.Args[1])
	}
}
