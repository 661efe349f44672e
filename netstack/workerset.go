package netstack

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// BaseWorker is the transport-neutral part of a Worker: an index, an
// EventCenter and a live-socket counter. Transports embed it and add Listen
// and Connect.
type BaseWorker struct {
	id     int
	center *EventCenter
	load   atomic.Int64
}

// NewBaseWorker creates worker id with a new (stopped) event centre named
// "<stack>-w<id>".
func NewBaseWorker(stack string, id int) (*BaseWorker, error) {
	c, err := NewEventCenter(fmt.Sprintf("%s-w%d", stack, id))
	if err != nil {
		return nil, err
	}
	return &BaseWorker{id: id, center: c}, nil
}

// ID is the worker's index within its stack.
func (w *BaseWorker) ID() int { return w.id }

// Center is the worker's event loop.
func (w *BaseWorker) Center() *EventCenter { return w.center }

// Load is the number of live sockets on this worker.
func (w *BaseWorker) Load() int { return int(w.load.Load()) }

// AddLoad changes the live-socket count; sockets call AddLoad(1) when created
// on the worker and AddLoad(-1) when closed.
func (w *BaseWorker) AddLoad(delta int) { w.load.Add(int64(delta)) }

// LoadAdder is implemented by workers that count their sockets (every
// worker embedding BaseWorker). A ServerSocket uses it to charge an accepted
// socket to the worker the caller picked.
type LoadAdder interface {
	AddLoad(delta int)
}

// WorkerSet implements the lifecycle part of Stack for a fixed set of
// workers: Start, Stop, Workers and PickWorker. Transports embed *WorkerSet
// and add Name.
type WorkerSet struct {
	workers []Worker
	mu      sync.Mutex
	started bool
	stopped bool
	onStop  []func() error
}

// ErrAlreadyStarted is returned by Stack.Start on a stack already started.
var ErrAlreadyStarted = errors.New("netstack: stack already started")

// NewWorkerSet wraps workers, whose ID must be their index. It panics on an
// empty set or a mismatched ID (a programming error).
func NewWorkerSet(workers []Worker) *WorkerSet {
	if len(workers) == 0 {
		panic("netstack: NewWorkerSet with no workers")
	}
	for i, w := range workers {
		if w.ID() != i {
			panic(fmt.Sprintf("netstack: worker %d has ID %d", i, w.ID()))
		}
	}
	return &WorkerSet{workers: workers}
}

// NewWorkers builds a stack's n workers and their set: each a BaseWorker
// (its own event centre, named after stack) that wrap makes the stack's
// worker. On an error every centre made so far is stopped.
func NewWorkers(stack string, n int, wrap func(*BaseWorker) (Worker, error)) (*WorkerSet, error) {
	workers := make([]Worker, 0, n)
	for i := 0; i < n; i++ {
		bw, err := NewBaseWorker(stack, i)
		if err == nil {
			var w Worker
			if w, err = wrap(bw); err == nil {
				workers = append(workers, w)
				continue
			}
			_ = bw.Center().Stop()
		}
		for _, w := range workers {
			_ = w.Center().Stop()
		}
		return nil, err
	}
	return NewWorkerSet(workers), nil
}

// OnStop registers f to run during Stop, after every event centre stopped,
// in registration order (a stack releases its shared resources there).
func (s *WorkerSet) OnStop(f func() error) {
	s.mu.Lock()
	s.onStop = append(s.onStop, f)
	s.mu.Unlock()
}

// Start starts every worker's event centre. A second Start returns
// ErrAlreadyStarted; Start after Stop returns ErrStackStopped.
func (s *WorkerSet) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStackStopped
	}
	if s.started {
		return ErrAlreadyStarted
	}
	s.started = true
	for _, w := range s.workers {
		w.Center().Start()
	}
	return nil
}

// Stop stops every event centre (running work they had accepted) and then
// the OnStop functions. It is idempotent and safe before Start.
func (s *WorkerSet) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	onStop := s.onStop
	s.onStop = nil
	s.mu.Unlock()
	var errs []error
	for _, w := range s.workers {
		if err := w.Center().Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range onStop {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	return JoinErrors(errs...)
}

// Stopped reports whether Stop has been called; a transport's Listen and
// Connect return ErrStackStopped then.
func (s *WorkerSet) Stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Workers returns the workers; the slice must not be modified.
func (s *WorkerSet) Workers() []Worker { return s.workers }

// PickWorker returns the worker with the lowest Load, the lowest ID on ties.
func (s *WorkerSet) PickWorker() Worker {
	best := s.workers[0]
	bl := best.Load()
	for _, w := range s.workers[1:] {
		if l := w.Load(); l < bl {
			best, bl = w, l
		}
	}
	return best
}
