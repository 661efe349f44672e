package verbs

import (
	"runtime"
	"sync"
)

// node is the lifetime bookkeeping shared by every verbs object. A node
// counts its open children; Close of a node with open children fails with
// ErrBusy (EBUSY), so resources are destroyed children first. When the owner
// becomes unreachable without Close (a leak), a runtime cleanup marks the node
// abandoned and destroys it once its children are gone: a backstop, never the
// mechanism.
//
// Lock order: a child's mutex is never held while taking a parent's.
type node struct {
	mu        sync.Mutex
	parents   []*node
	children  int
	closed    bool
	abandoned bool
	destroy   func() error // must not reference the owner object
	cleanup   runtime.Cleanup
}

// newNode attaches a node to its (non-nil) parents; it fails if one is closed.
func newNode(op string, parents ...*node) (*node, error) {
	n := &node{}
	for i, p := range parents {
		if p == nil {
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			for _, q := range parents[:i] {
				if q != nil {
					q.childGone()
				}
			}
			return nil, closedErr(op)
		}
		p.children++
		p.mu.Unlock()
		n.parents = append(n.parents, p)
	}
	return n, nil
}

// newNodeFor is newNode, then create (the C call that makes the object):
// when create fails, the node is detached again and the error is op's.
func newNodeFor(op string, create func() error, parents ...*node) (*node, error) {
	n, err := newNode(op, parents...)
	if err != nil {
		return nil, err
	}
	if err := create(); err != nil {
		n.detach()
		return nil, opErr(op, err)
	}
	return n, nil
}

// detach undoes newNode when creating the object itself failed.
func (n *node) detach() {
	for _, p := range n.parents {
		p.childGone()
	}
	n.parents = nil
}

// arm installs the destroy function and the leak backstop for owner.
func arm[T any](n *node, owner *T, destroy func() error) {
	n.destroy = destroy
	n.cleanup = runtime.AddCleanup(owner, (*node).abandon, n)
}

// isClosed reports whether Close has run (or the object was never created).
func (n *node) isClosed() bool {
	if n == nil {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// close destroys the object; idempotent; EBUSY while children are open.
func (n *node) close(op string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	if n.children > 0 {
		n.mu.Unlock()
		return kindErr(op, ebusy, ErrBusy, "close its children first")
	}
	if n.destroy != nil {
		if err := n.destroy(); err != nil {
			n.mu.Unlock()
			return opErr(op, err)
		}
	}
	n.closed = true
	n.cleanup.Stop()
	parents := n.parents
	n.parents = nil
	n.mu.Unlock()
	for _, p := range parents {
		p.childGone()
	}
	return nil
}

func (n *node) abandon() {
	n.mu.Lock()
	n.abandoned = true
	n.mu.Unlock()
	n.reap()
}

func (n *node) childGone() {
	n.mu.Lock()
	n.children--
	n.mu.Unlock()
	n.reap()
}

// reap destroys an abandoned node whose children are all gone.
func (n *node) reap() {
	n.mu.Lock()
	if !n.abandoned || n.closed || n.children > 0 {
		n.mu.Unlock()
		return
	}
	if n.destroy != nil {
		_ = n.destroy() // best effort: this is the leak backstop
	}
	n.closed = true
	parents := n.parents
	n.parents = nil
	n.mu.Unlock()
	for _, p := range parents {
		p.childGone()
	}
}

// reparent moves n from parent old to parent new (rdma_migrate_id).
func (n *node) reparent(old, nw *node) {
	nw.mu.Lock()
	nw.children++
	nw.mu.Unlock()
	n.mu.Lock()
	for i, p := range n.parents {
		if p == old {
			n.parents[i] = nw
		}
	}
	n.mu.Unlock()
	old.childGone()
}
