package netstack

import (
	"errors"
	"net"
	"strings"
)

// ErrStackStopped is returned by operations on a Stack, Worker or socket
// adapter after Stop. It matches net.ErrClosed.
var ErrStackStopped = Closed(errors.New("netstack: stack stopped"))

// ErrStackNotStarted is returned by adapters (netstack/netconn) asked to
// listen or dial on a stack whose Start was never called: nothing would
// ever serve the socket.
var ErrStackNotStarted = errors.New("netstack: stack not started")

// Closed returns err marked as a closed-connection error: it prints as err
// alone, on one line, and matches both err and net.ErrClosed with errors.Is
// (errors.Join would print the two on separate lines).
func Closed(err error) error {
	if err == nil {
		return nil
	}
	return &closedError{err}
}

type closedError struct{ err error }

func (e *closedError) Error() string   { return e.err.Error() }
func (e *closedError) Unwrap() []error { return []error{e.err, net.ErrClosed} }

// JoinErrors is errors.Join printing on one line ("a; b"): nil errors are
// dropped, nil when none is left, and errors.Is and errors.As see every one.
func JoinErrors(errs ...error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return &joinError{kept}
}

type joinError struct{ errs []error }

func (e *joinError) Error() string {
	var b strings.Builder
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *joinError) Unwrap() []error { return e.errs }
