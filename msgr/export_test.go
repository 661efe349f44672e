package msgr

import "github.com/asyncmsgr/asyncmsgr/internal/lockorder"

// Every test of the package, internal and external, runs with the lock-order
// checker on (see lockorder.go).
func init() { lockorder.Enable() }
