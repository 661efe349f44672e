package config

// Admin holds the options of the admin socket (Ceph's names).
type Admin struct {
	// admin_socket: the Unix socket path that answers `perf dump` and
	// `help` as a Ceph daemon's does ($run_dir, $cluster, $name and $pid
	// expand; Ceph's daemons use "$run_dir/$cluster-$name.asok"). Empty
	// (asyncmsgr's default) is no admin socket.
	AdminSocket string
	// run_dir: what $run_dir expands to ("/var/run/ceph").
	RunDir string
}

func defaultAdmin() Admin { return Admin{RunDir: "/var/run/ceph"} }

var adminOptions = []option{
	{"admin_socket", kindString, func(c *Config) any { return &c.AdminSocket }},
	{"run_dir", kindString, func(c *Config) any { return &c.RunDir }},
}
