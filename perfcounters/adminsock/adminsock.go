package adminsock

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/asyncmsgr/asyncmsgr/perfcounters"
)

// requestLimit bounds a command's length and requestTimeout a client's
// whole exchange: an admin socket is local, but a wedged client must not
// hold a goroutine forever.
const (
	requestLimit   = 64 << 10
	requestTimeout = 10 * time.Second
)

// Server is a running admin socket.
type Server struct {
	path string
	reg  *perfcounters.Registry
	log  *slog.Logger
	ln   *net.UnixListener
	wg   sync.WaitGroup
	once sync.Once
}

// command is one admin socket command: its descriptor (Ceph's syntax:
// words, then name=...,type=... arguments) and help.
type command struct {
	desc, help string
}

var commands = []command{
	{"perf dump name=logger,type=CephString,req=false name=counter,type=CephString,req=false", "dump perfcounters value"},
	{"perf schema", "dump perfcounters schema"},
	{"help", "list available commands"},
	{"get_command_descriptions", "list available commands"},
	{"version", "get ceph version"},
}

// Listen serves reg on a Unix socket at path (a stale socket file there is
// replaced, as Ceph does). Close stops it and removes the file.
func Listen(path string, reg *perfcounters.Registry, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("adminsock: listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	s := &Server{path: path, reg: reg, log: log, ln: ln}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, waits for requests in flight and removes the
// socket file. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		s.wg.Wait()
	})
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	backoff := time.Duration(0)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait, as net/http does, then retry.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
				s.log.Warn("adminsock: accept failing, backing off", "path", s.path, "err", err)
			} else if backoff < time.Second {
				backoff *= 2
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(requestTimeout))
	req, err := bufio.NewReaderSize(c, 4096).ReadSlice(0)
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		// a client that closed after writing without a terminator still
		// sent a command
		if len(req) == 0 {
			return
		}
	}
	req = bytes.TrimRight(req, "\x00\n")
	if len(req) > requestLimit {
		req = req[:requestLimit]
	}
	out := s.Handle(req)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(out)))
	_, _ = c.Write(append(hdr[:], out...))
}

// Handle answers one command (the JSON a client sends, or a bare command
// such as "perf dump") and returns the reply's bytes.
func (s *Server) Handle(req []byte) []byte {
	args := map[string]any{}
	if err := json.Unmarshal(req, &args); err != nil {
		args = map[string]any{"prefix": strings.TrimSpace(string(req))}
	}
	prefix, _ := args["prefix"].(string)
	switch prefix {
	case "perf dump", "perfcounters_dump", "1":
		return s.perfDump(args)
	case "perf schema", "perfcounters_schema", "2":
		return s.reg.Schema()
	case "help":
		m := map[string]string{}
		for _, c := range commands {
			m[c.desc] = c.help
		}
		b, _ := json.Marshal(m)
		return b
	case "get_command_descriptions":
		return commandDescriptions()
	case "version", "0":
		return []byte(`{"version":"asyncmsgr","release":"pacific","release_type":"stable"}`)
	}
	return []byte(fmt.Sprintf(`{"error":%q}`, "unknown command "+prefix))
}

// perfDump is perf dump, narrowed to one logger (and one counter) when asked.
func (s *Server) perfDump(args map[string]any) []byte {
	logger, _ := args["logger"].(string)
	counter, _ := args["counter"].(string)
	if logger == "" {
		return s.reg.Dump()
	}
	out := map[string]map[string]uint64{}
	s.reg.Each(func(set, name, _ string, _ perfcounters.Kind, v uint64) {
		if set != logger || counter != "" && name != counter {
			return
		}
		if out[set] == nil {
			out[set] = map[string]uint64{}
		}
		out[set][name] = v
	})
	b, _ := json.Marshal(out)
	return b
}

// commandDescriptions is get_command_descriptions in Ceph's JSON: each
// command's signature as words and argument descriptors.
func commandDescriptions() []byte {
	type entry struct {
		Sig    []any  `json:"sig"`
		Help   string `json:"help"`
		Module string `json:"module"`
		Perm   string `json:"perm"`
		Flags  int    `json:"flags"`
	}
	out := map[string]entry{}
	for i, c := range commands {
		var sig []any
		for _, w := range strings.Fields(c.desc) {
			if !strings.Contains(w, "=") {
				sig = append(sig, w)
				continue
			}
			d := map[string]string{}
			for _, kv := range strings.Split(w, ",") {
				k, v, _ := strings.Cut(kv, "=")
				d[k] = v
			}
			sig = append(sig, d)
		}
		out[fmt.Sprintf("cmd%03d", i)] = entry{Sig: sig, Help: c.help, Perm: "r"}
	}
	b, _ := json.Marshal(out) // encoding/json sorts the keys

	return b
}
