module github.com/asyncmsgr/asyncmsgr

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
