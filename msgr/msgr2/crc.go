package msgr2

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C computes Ceph's ceph_crc32c(seed, b): CRC-32C (Castagnoli), the
// register initialised to seed, no final inversion. Ceph calls it with seed 0
// for the preamble and with seed 0xffffffff (-1) for segments. Go's crc32
// inverts before and after, hence the two inversions here.
func CRC32C(seed uint32, b []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, b)
}
