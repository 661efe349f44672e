package verbs

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Sentinel errors. Errors returned by this package errors.Is both the
// sentinel (when one applies) and the errno of the failing call.
var (
	// ErrNoDevice: no RDMA device, or none with the requested name (ENODEV).
	ErrNoDevice = errors.New("verbs: no RDMA device")
	// ErrPortDown: the port is not ACTIVE (ENETDOWN).
	ErrPortDown = errors.New("verbs: port is not active")
	// ErrMemlockTooLow: registering memory failed because RLIMIT_MEMLOCK is
	// too low (ENOMEM); the message gives the limit and how to raise it.
	ErrMemlockTooLow = errors.New("verbs: RLIMIT_MEMLOCK too low")
	// ErrNotSupported: built without cgo or not on Linux, or the device lacks
	// the feature (EOPNOTSUPP).
	ErrNotSupported = errors.New("verbs: not supported")
	// ErrBusy: Close of an object whose children are still open (EBUSY).
	ErrBusy = errors.New("verbs: object has open children")
)

// Error is the error of a failed verbs call: the verb, the errno captured in
// the same cgo call, and an optional sentinel.
type Error struct {
	Op     string        // e.g. "ibv_modify_qp RTR"
	Errno  syscall.Errno // the errno of the call
	Kind   error         // a sentinel above, net.ErrClosed, or nil
	Detail string        // extra advice, may be empty
}

// Error formats "verbs: OP: errno text[: detail]".
func (e *Error) Error() string {
	s := "verbs: " + e.Op + ": " + e.Errno.Error()
	if e.Kind != nil && e.Kind != net.ErrClosed {
		s += " (" + e.Kind.Error() + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel (if any) and the errno.
func (e *Error) Unwrap() []error {
	if e.Kind != nil {
		return []error{e.Kind, e.Errno}
	}
	return []error{e.Errno}
}

// Timeout reports whether the errno is a timeout (EAGAIN, ETIMEDOUT), as net errors do.
func (e *Error) Timeout() bool { return e.Errno.Timeout() }

// Temporary reports whether retrying may succeed.
func (e *Error) Temporary() bool { return e.Errno.Temporary() }

// opErr wraps err (a syscall.Errno or an *Error) as the error of op.
func opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ve *Error
	if errors.As(err, &ve) {
		return &Error{Op: op, Errno: ve.Errno, Kind: ve.Kind, Detail: ve.Detail}
	}
	var en syscall.Errno
	if !errors.As(err, &en) {
		return fmt.Errorf("verbs: %s: %w", op, err)
	}
	e := &Error{Op: op, Errno: en}
	switch en {
	case syscall.ENODEV:
		e.Kind = ErrNoDevice
	case syscall.EOPNOTSUPP, syscall.ENOSYS:
		e.Kind = ErrNotSupported
		if !Supported {
			return notSupported(op)
		}
	case syscall.EBUSY:
		e.Kind = ErrBusy
	}
	return e
}

func kindErr(op string, en syscall.Errno, kind error, detail string) error {
	return &Error{Op: op, Errno: en, Kind: kind, Detail: detail}
}

func closedErr(op string) error {
	return &Error{Op: op, Errno: syscall.EBADF, Kind: net.ErrClosed}
}

// goneErr is the error of an entry point called on a nil or closed object.
// Without cgo no object can be made, so there the cause is the build.
func goneErr(op string) error {
	if !Supported {
		return notSupported(op)
	}
	return closedErr(op)
}

func notSupported(op string) error {
	return &Error{Op: op, Errno: syscall.EOPNOTSUPP, Kind: ErrNotSupported, Detail: "asyncmsgr was built without cgo or not for Linux"}
}

// memlockAdvice explains a too-low RLIMIT_MEMLOCK of cur bytes.
func memlockAdvice(cur uint64, infinite bool) string {
	lim := "unlimited"
	if !infinite {
		lim = fmt.Sprintf("%d bytes (%d KiB)", cur, cur/1024)
	}
	return "RLIMIT_MEMLOCK is " + lim + "; raise it with `ulimit -l unlimited`, " +
		"`docker run --ulimit memlock=-1`, LimitMEMLOCK=infinity (systemd), " +
		"or a `* - memlock unlimited` line in /etc/security/limits.conf"
}

// memlockErr builds ErrMemlockTooLow for op when the current limit is finite.
func memlockErr(op string, en syscall.Errno) error {
	cur, infinite, ok := memlockLimit()
	if !ok || infinite {
		return opErr(op, en)
	}
	return kindErr(op, en, ErrMemlockTooLow, memlockAdvice(cur, infinite))
}

// CheckMemlock returns ErrMemlockTooLow (wrapping ENOMEM) when RLIMIT_MEMLOCK
// is finite and smaller than need bytes, so that callers can fail early with
// clear advice before registering large pools.
func CheckMemlock(need uint64) error {
	cur, infinite, ok := memlockLimit()
	if !ok || infinite || cur >= need {
		return nil
	}
	return kindErr("RLIMIT_MEMLOCK check", syscall.ENOMEM, ErrMemlockTooLow,
		fmt.Sprintf("%d bytes needed; %s", need, memlockAdvice(cur, false)))
}
