package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/msgr"
	_ "github.com/asyncmsgr/asyncmsgr/posixfallback" // registers "posix"
	_ "github.com/asyncmsgr/asyncmsgr/rdmastack"     // registers "rdma"
)

const (
	msgPing = 0x7001
	msgPong = 0x7002
)

func main() {
	var (
		confPath = flag.String("c", "", "ceph.conf-style configuration file")
		server   = flag.String("server", "", "run as a server listening on ADDR (host:port)")
		count    = flag.Int("n", 1000, "client: number of pings")
		size     = flag.Int("s", 2, "client: payload bytes per ping (at least 8)")
		depth    = flag.Int("d", 1, "client: pings in flight")
		verbose  = flag.Bool("v", false, "log faults and sessions (Ceph's debug_ms 1)")
	)
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [-c ceph.conf] [-server ADDR | [-n N] [-s SIZE] [-d DEPTH] ADDR]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	section := "client.msgrping"
	if *server != "" {
		section = "osd.0"
	}
	cfg, err := config.Load(*confPath, section) // defaults, [global], the type and entity sections, env
	if err != nil {
		fatalf("config: %v", err)
	}
	level := slog.LevelError
	if *verbose {
		level = msgr.DebugMsLevel(1)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := []msgr.Option{msgr.WithLogger(logger)}
	switch {
	case *server != "" && flag.NArg() == 0:
		m, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeOSD, Num: 0}, opts...)
		if err != nil {
			fatalf("%v", err)
		}
		m.SetPolicy(msgr.EntityTypeClient, msgr.StatelessServer())
		m.AddDispatcherTail(&echo{})
		if err := m.Bind(*server); err != nil {
			fatalf("%v", err)
		}
		if err := m.Start(); err != nil {
			fatalf("%v", err)
		}
		fmt.Printf("msgrping server on %s (stack %s, %d workers)\n", m.Addr(), m.Stack().Name(), len(m.Stack().Workers()))
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		_ = m.Shutdown()
	case *server == "" && flag.NArg() == 1:
		if err := runClient(cfg, opts, flag.Arg(0), *count, *size, *depth); err != nil {
			fatalf("%v", err)
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "msgrping: "+format+"\n", args...)
	os.Exit(1)
}

// echo answers pings from the worker goroutine.
type echo struct{ msgr.BaseDispatcher }

func (*echo) CanFastDispatch(m *msgr.Message) bool { return m.Type == msgPing }
func (*echo) FastDispatch(m *msgr.Message) {
	_ = m.Conn.SendMessage(&msgr.Message{Type: msgPong, Tid: m.Tid, Front: m.Front})
}

// pongs hands pongs to the client loop.
type pongs struct {
	msgr.BaseDispatcher
	ch     chan time.Time
	resets chan error
}

func (p *pongs) CanFastDispatch(m *msgr.Message) bool { return m.Type == msgPong }
func (p *pongs) FastDispatch(m *msgr.Message) {
	if len(m.Front) >= 8 {
		p.ch <- time.Unix(0, int64(binary.LittleEndian.Uint64(m.Front)))
	}
}
func (p *pongs) MsHandleReset(_ *msgr.Connection, err error) bool {
	select {
	case p.resets <- err:
	default:
	}
	return true
}

func runClient(cfg *config.Config, opts []msgr.Option, addr string, count, size, depth int) error {
	if size < 8 {
		size = 8
	}
	if depth < 1 {
		depth = 1
	}
	m, err := msgr.New(cfg, msgr.EntityName{Type: msgr.EntityTypeClient, Num: int64(os.Getpid())}, opts...)
	if err != nil {
		return err
	}
	defer m.Shutdown()
	m.SetPolicy(msgr.EntityTypeOSD, msgr.LossyClient())
	p := &pongs{ch: make(chan time.Time, depth), resets: make(chan error, 1)}
	m.AddDispatcherTail(p)
	if err := m.Start(); err != nil {
		return err
	}
	conn, err := m.ConnectTo(msgr.EntityTypeOSD, addr)
	if err != nil {
		return err
	}
	send := func(tid int) error {
		front := make([]byte, size)
		binary.LittleEndian.PutUint64(front, uint64(time.Now().UnixNano()))
		return conn.SendMessage(&msgr.Message{Type: msgPing, Tid: uint64(tid), Front: front})
	}
	rtts := make([]time.Duration, 0, count)
	start := time.Now()
	sent := 0
	for ; sent < depth && sent < count; sent++ {
		if err := send(sent); err != nil {
			return err
		}
	}
	for len(rtts) < count {
		select {
		case t0 := <-p.ch:
			rtts = append(rtts, time.Since(t0))
			if sent < count {
				if err := send(sent); err != nil {
					return err
				}
				sent++
			}
		case err := <-p.resets:
			return fmt.Errorf("connection to %s failed after %d pongs: %v", addr, len(rtts), err)
		}
	}
	elapsed := time.Since(start)
	st := conn.Stats()
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	var sum time.Duration
	for _, r := range rtts {
		sum += r
	}
	pct := func(q float64) time.Duration { return rtts[int(q*float64(len(rtts)-1))] }
	fmt.Printf("msgrping %s: stack %s, %d pings of %d bytes, depth %d, %.3fs\n",
		addr, m.Stack().Name(), count, size, depth, elapsed.Seconds())
	fmt.Printf("rtt min %v avg %v p50 %v p99 %v p99.9 %v max %v\n",
		rtts[0], sum/time.Duration(len(rtts)), pct(0.5), pct(0.99), pct(0.999), rtts[len(rtts)-1])
	fmt.Printf("rate %.0f msg/s; conn sent %d msgs %d bytes, received %d msgs %d bytes, faults %d\n",
		float64(count)/elapsed.Seconds(), st.MsgsSent, st.BytesSent, st.MsgsRecv, st.BytesRecv, st.Faults)
	return nil
}
