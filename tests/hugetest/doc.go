// Package hugetest reserves huge pages for a test: it sets
// vm.nr_hugepages and restores it when the test ends. The verbs, mempool
// and rdmasuite tests share it; it must not import asyncmsgr packages, so
// verbs' own tests can use it without an import cycle.
package hugetest
