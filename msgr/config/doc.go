// Package config owns the ms_* options: their names, defaults, validation and
// the three ways to set them (a ceph.conf-style file, ASYNCMSGR_* environment
// variables, code). It is a leaf package: it imports only the standard library,
// so every stack and the messenger can depend on it.
package config
