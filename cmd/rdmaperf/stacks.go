package main

// The messenger tests' transports register themselves with netstack.
import (
	_ "github.com/asyncmsgr/asyncmsgr/posixfallback" // "posix"
)
