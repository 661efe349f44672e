// Package mempool owns the registered memory of the rdma stack, after Ceph's
// Infiniband::MemoryManager: the TX cluster (one contiguous region registered
// as a single MR and cut into fixed chunks of ms_async_rdma_buffer_size, a
// free list taken and refilled in batches), the RX pool (chunks in
// MR-registered blocks that grow on demand up to ms_async_rdma_receive_buffers,
// 0 = unlimited), optional huge pages, and the RLIMIT_MEMLOCK check made before
// anything is registered. It keeps the counters Ceph keeps for them.
//
// mempool must not: post work requests, poll CQs, know about connections or
// sockets (that is dispatcher's and rdmastack's job), allocate on the
// Get/Put hot path, or hand out Go memory to the device (every byte it
// registers comes from verbs.PD.RegRegion: mmap, MAP_HUGETLB with huge
// pages, never the Go heap).
package mempool
