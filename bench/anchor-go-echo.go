// bench/anchor-go-echo.go - workload E's Go anchor: the idiomatic echo
// server, a goroutine per connection (net.Listen, Accept, Read, Write).
// Run with GOMAXPROCS=1 for one core.  Listens on 127.0.0.1 at an
// ephemeral port, prints "PORT <n>" and serves until killed.
package main

import (
	"fmt"
	"net"
	"os"
)

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			os.Exit(1)
		}
		go handle(c)
	}
}
