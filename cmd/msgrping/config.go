package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/asyncmsgr/asyncmsgr/msgr/config"
)

// loadConfig builds the configuration: defaults, then the file, then the
// environment.
//
// Interim: msgr/config's file and environment parsers were not in the tree
// when this was written, so this reads only ms_async_transport_type (file,
// any section, '_' or ' ' in the name) and ASYNCMSGR_MS_ASYNC_TRANSPORT_TYPE.
// Switch to the config package's parsers once they exist.
func loadConfig(path string) (*config.Config, error) {
	cfg := config.Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%s:%d: no '=' in %q", path, n, line)
			}
			k = strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(k), "_", " ")), "_")
			if k == "ms_async_transport_type" {
				cfg.TransportType = strings.TrimSpace(v)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	if v := os.Getenv("ASYNCMSGR_MS_ASYNC_TRANSPORT_TYPE"); v != "" {
		cfg.TransportType = v
	}
	return cfg, nil
}
