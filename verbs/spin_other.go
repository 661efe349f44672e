//go:build !linux || !cgo

package verbs

// PostSpin posts and spin-polls; ErrNotSupported without cgo.
func (q *QP) PostSpin(recv []RecvRequest, send []WorkRequest, w *SpinWait, dst []WorkCompletion) (SpinResult, error) {
	return SpinResult{}, notSupported("shim_spin")
}

// PollSpin spin-polls a CQ; ErrNotSupported without cgo.
func (cq *CQ) PollSpin(dst []WorkCompletion, min, spins int) (int, error) {
	return 0, notSupported("shim_spin")
}
