//go:build amd64 || arm64

package lockorder

// supported: getg names the calling goroutine on this architecture.
const supported = true

// getg is the address of the calling goroutine's descriptor (the runtime's
// g, read from the register or thread-local slot that holds it). It names
// the goroutine while it lives, which is all a held set needs: a goroutine
// holding a lock is alive. It is an identity, never dereferenced.
func getg() uintptr
