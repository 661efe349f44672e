package main

import "github.com/asyncmsgr/asyncmsgr/config"

// loadConfig builds the configuration the way a Ceph daemon does: defaults,
// then the file ([global], then the entity's type section, then its own
// section), then ASYNCMSGR_* environment variables.
func loadConfig(path, section string) (*config.Config, error) {
	return config.Load(path, section)
}
