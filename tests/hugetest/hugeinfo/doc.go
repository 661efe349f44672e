// Package hugeinfo is hugetest.Reserve checked against the kernel's huge
// page counters as verbs reads them, and those counters, for the tests of
// the packages above verbs (mempool, rdmasuite). verbs' own tests keep
// their copy: a helper they import must not import verbs.
package hugeinfo
