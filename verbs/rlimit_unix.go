//go:build unix

package verbs

import "golang.org/x/sys/unix"

func memlockLimit() (cur uint64, infinite, ok bool) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &r); err != nil {
		return 0, false, false
	}
	return r.Cur, r.Cur == unix.RLIM_INFINITY, true
}
