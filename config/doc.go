// Package config owns the ms_* options: their names, defaults, validation and
// the three ways to set them (a ceph.conf-style file, ASYNCMSGR_* environment
// variables, code). It is a leaf package: it imports only the standard library,
// so every stack and the messenger can depend on it. It must not open
// devices, sockets or start goroutines, and it does not watch files: a
// Config is a plain value read once at start-up.
//
// Order of application (Load): Default, the file, the environment, then
// Validate. Code may also assign fields directly or call Set after Load, and
// then call Validate again.
//
// Files: Ceph's ceph.conf syntax (see Config.Parse). Options come from
// [global] and, when the caller passes an entity name such as "client" or
// "client.admin", from [client] and [client.admin], later sections winning;
// [mon], [osd] and other sections are ignored for other callers. Keys that
// are not ms_* options are ignored (a real ceph.conf can be used as is), as
// are ms_* options Ceph defines but asyncmsgr does not use; ms_type and
// ms_public_type "async+rdma" select the rdma transport like in Ceph. An
// unknown ms_* key is a warning (returned, or logged by Load), not an error,
// because Ceph too only warns.
//
// Values: sizes (ms_async_rdma_buffer_size, ms_tcp_rcvbuf,
// ms_async_rdma_send_msg_size, ms_max_frame_segment; Ceph's TYPE_SIZE) take
// IEC suffixes K/Ki = 1024, M/Mi, G/Gi, ...; counts (Ceph's TYPE_INT and
// TYPE_UINT, e.g. ms_async_rdma_send_buffers) take SI suffixes K = 1000,
// M = 10^6, ..., exactly as Ceph parses them. Booleans: true/false, yes/no,
// on/off, or an integer. Timeouts, keepalive and backoffs: seconds, float
// allowed ("0.2"), or a Go duration ("200ms"). Fault injection
// (ms_inject_*, Ceph's testing options, off by default): a count, a list of
// entity types, seconds and a probability 0..1 (config/inject.go).
//
// Environment: ASYNCMSGR_ followed by the option name in any case, e.g.
// ASYNCMSGR_MS_ASYNC_TRANSPORT_TYPE=rdma.
//
// Compared with Ceph's own parser (checked by TestAgreesWithCephConf against
// ceph-conf 16.2 when it is installed) this one accepts more and fails
// louder: keys may also use '-' and any case, section names are trimmed and
// case-insensitive, '#' and ';' are allowed inside quoted values, booleans
// also take yes/no/on/off, timeouts take fractions of a second; and a value
// that does not parse is an error naming the option and line, where Ceph
// logs it and keeps the default.
package config
