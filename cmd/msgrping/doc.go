// Command msgrping is the messenger's example host application: run it as a
// server (-server ADDR) and as a client (ADDR) that sends ping messages and
// prints round-trip statistics. The network stack is chosen as in a Ceph
// daemon, with ms_async_transport_type in the configuration file (-c) or the
// ASYNCMSGR_MS_ASYNC_TRANSPORT_TYPE environment variable.
//
//	msgrping -c ceph.conf -server 127.0.0.1:6800
//	msgrping -c ceph.conf -n 10000 -s 4096 -d 16 127.0.0.1:6800
//
// It owns nothing reusable and must not contain messenger logic.
package main
