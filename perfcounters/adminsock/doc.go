// Package adminsock owns an admin socket that answers as a Ceph daemon's
// does (src/common/admin_socket.cc), so `ceph --admin-daemon PATH perf dump`
// and `ceph daemon PATH perf dump` (Debian's ceph-common) read an asyncmsgr
// process's counters. Commands: perf dump [logger] [counter], perf schema,
// help, get_command_descriptions (what the ceph CLI asks first, to validate
// the command), version.
//
// Wire: the client writes a JSON command ({"prefix": "perf dump"})
// terminated by NUL or newline; the server answers with a big-endian uint32
// length, then that many bytes, then closes. One
// goroutine accepts; each request is served on its own goroutine with a
// deadline, so a stuck client cannot block others.
//
// It must not know the messenger: it serves a perfcounters.Registry.
package adminsock
