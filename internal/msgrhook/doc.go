// Package msgrhook holds msgr's test hooks, so that the module's test
// packages (tests/...) reach them while they stay out of msgr's public API.
// msgr sets every hook when it is initialised; this package imports nothing
// of msgr's and must hold nothing but hooks for tests.
package msgrhook
