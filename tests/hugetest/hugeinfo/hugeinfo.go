package hugeinfo

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asyncmsgr/asyncmsgr/tests/hugetest"
	"github.com/asyncmsgr/asyncmsgr/verbs"
)

// Reserve reserves n default-size (2 MiB) huge pages for the rest of t
// (restored after) and checks that the kernel reserved them.
func Reserve(t *testing.T, n int) {
	t.Helper()
	hugetest.Reserve(t, n)
	info := Read(t)
	require.Equal(t, n, info.Total, "kernel reserved %d huge pages, asked for %d", info.Total, n)
	require.Equal(t, verbs.HugePageSize, info.PageSize)
}

// Read is the kernel's huge page counters now.
func Read(t *testing.T) verbs.HugePageInfo {
	t.Helper()
	info, err := verbs.ReadHugePageInfo()
	require.NoError(t, err)
	return info
}

// Free is the number of free huge pages now.
func Free(t *testing.T) int {
	t.Helper()
	return Read(t).Free
}
