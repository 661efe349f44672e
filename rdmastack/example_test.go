package rdmastack_test

import (
	"fmt"

	"github.com/asyncmsgr/asyncmsgr/config"
	"github.com/asyncmsgr/asyncmsgr/netstack"
	_ "github.com/asyncmsgr/asyncmsgr/posixfallback" // the fallback
	"github.com/asyncmsgr/asyncmsgr/rdmastack"
)

// Example selects the rdma stack the way a Ceph daemon does
// (ms_async_transport_type = rdma), falling back to posix on a machine
// without an RDMA device, and reads the dispatcher's counters.
func Example() {
	cfg := config.Default()
	cfg.TransportType = "rdma"
	cfg.TransportFallback = true
	cfg.RDMADeviceName = "rxe0"
	cfg.RDMAGIDIdx = -1 // the RoCEv2 IPv4 GID
	st, err := netstack.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Stop()
	if err := st.Start(); err != nil {
		fmt.Println(err)
		return
	}
	if rs, ok := st.(*rdmastack.Stack); ok {
		s := rs.Stats()
		fmt.Println("rdma: QPs active", s.QPsActive, "WRs per post", s.WRsPerPost())
	} else {
		fmt.Println("running on", st.Name())
	}
}
