package rdmatest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ChildRoleEnv names the environment variable that turns a re-executed test
// binary into a child peer running one role.
const ChildRoleEnv = "RDMATEST_CHILD_ROLE"

// RunAsChild is called first thing from a test package's TestMain. When the
// binary was started by StartChild it runs the named role with the child's
// arguments and exits with its status (0 when the role returns nil, 1 after
// printing the error); otherwise it returns and TestMain goes on to m.Run.
//
// A role talks to its parent through stdout, one line per event (see
// Child.WaitLine), and reads commands from stdin (a closed stdin means the
// parent is gone; roles should exit then).
func RunAsChild(roles map[string]func(args []string) error) {
	role := os.Getenv(ChildRoleEnv)
	if role == "" {
		return
	}
	f, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "rdmatest child: unknown role %q\n", role)
		os.Exit(2)
	}
	var args []string
	if a := os.Getenv(ChildRoleEnv + "_ARGS"); a != "" {
		args = strings.Split(a, "\x1f")
	}
	if err := f(args); err != nil {
		fmt.Fprintf(os.Stderr, "rdmatest child %s: %v\n", role, err)
		fmt.Printf("ERROR %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Child is a re-executed copy of the test binary running one role.
type Child struct {
	t     testing.TB
	Role  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}

	mu     sync.Mutex
	stderr strings.Builder
	seen   []string
	err    error // Wait's result once done is closed
}

// StartChild re-executes the running test binary with role and args (see
// RunAsChild). The child dies with the parent (PR_SET_PDEATHSIG) and is
// killed at cleanup if still running; its stderr is logged when the test
// fails.
func StartChild(t testing.TB, role string, args ...string) *Child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("own executable: %v", err)
	}
	c := &Child{t: t, Role: role, lines: make(chan string, 1024), done: make(chan struct{})}
	c.cmd = exec.Command(exe, "-test.run=^$")
	c.cmd.Env = append(os.Environ(), ChildRoleEnv+"="+role, ChildRoleEnv+"_ARGS="+strings.Join(args, "\x1f"))
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd.Stderr = &lockedWriter{mu: &c.mu, b: &c.stderr}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("child stdout: %v", err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatalf("child stdin: %v", err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", role, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		err := c.cmd.Wait()
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.lines)
		close(c.done)
	}()
	t.Cleanup(func() {
		c.Kill()
		if t.Failed() {
			c.mu.Lock()
			t.Logf("child %s (pid %d) stderr:\n%s\nstdout lines: %q", role, c.Pid(), tail(c.stderr.String(), 4000), c.seen)
			c.mu.Unlock()
		}
	})
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Send writes one command line to the child's stdin.
func (c *Child) Send(line string) error {
	_, err := io.WriteString(c.stdin, line+"\n")
	return err
}

// WaitLine returns the first line (after those already consumed) that starts
// with prefix, with the prefix and one following space removed. It fails the
// test when the child exits, prints "ERROR ..." or limit passes first.
func (c *Child) WaitLine(prefix string, limit time.Duration) string {
	c.t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("child %s exited (%v) before printing %q; stderr: %s", c.Role, c.exitErr(), prefix, tail(c.stderrString(), 2000))
			}
			c.mu.Lock()
			c.seen = append(c.seen, l)
			if len(c.seen) > 64 {
				c.seen = c.seen[len(c.seen)-64:]
			}
			c.mu.Unlock()
			if strings.HasPrefix(l, "ERROR ") {
				c.t.Fatalf("child %s: %s", c.Role, l)
			}
			if strings.HasPrefix(l, prefix) {
				return strings.TrimPrefix(strings.TrimPrefix(l, prefix), " ")
			}
		case <-timer.C:
			c.t.Fatalf("child %s printed no %q line within %v; stderr: %s", c.Role, prefix, limit, tail(c.stderrString(), 2000))
		}
	}
}

// Lines is the channel of the child's stdout lines not yet consumed by
// WaitLine; it is closed when the child exits.
func (c *Child) Lines() <-chan string { return c.lines }

func (c *Child) stderrString() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

func (c *Child) exitErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Kill sends SIGKILL and waits (bounded) for the child to be reaped. It is
// idempotent.
func (c *Child) Kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	c.drainUntilDone(30 * time.Second)
}

// Stop closes the child's stdin (roles exit when it closes) and waits up to
// limit for it to exit, then kills it. It returns the child's exit error.
func (c *Child) Stop(limit time.Duration) error {
	_ = c.stdin.Close()
	if !c.drainUntilDone(limit) {
		c.Kill()
	}
	return c.exitErr()
}

// Done is closed once the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// drainUntilDone keeps the stdout pipe flowing until the child is reaped.
func (c *Child) drainUntilDone(limit time.Duration) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case <-c.done:
			return true
		case _, ok := <-c.lines:
			if !ok {
				select {
				case <-c.done:
					return true
				case <-timer.C:
					return false
				}
			}
		case <-timer.C:
			return false
		}
	}
}

// Commands returns the lines the parent sends to this child (Child.Send),
// closed at EOF (the parent closed stdin or died). Roles exit when it closes.
func Commands() <-chan string {
	ch := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return ch
}
