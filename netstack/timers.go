package netstack

import (
	"container/heap"
	"time"
)

// timerHeap is a container/heap min-heap of time events ordered by
// (when, seq); it keeps each timer's index current so DeleteTimeEvent can
// remove from the middle. Pointers in the interface values Push and Pop
// exchange do not allocate.
type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.when.Equal(b.when) {
		return a.seq < b.seq
	}
	return a.when.Before(b.when)
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = nil
	*h = old[:n]
	t.index = -1
	return t
}

// timers is the loop-goroutine state of an EventCenter's time events.
type timers struct {
	heap timerHeap
	byID map[TimerID]*timer
	free []*timer // recycled, so a warm loop schedules without allocating
	next TimerID
	seq  uint64
}

// CreateTimeEvent schedules f to run once on the loop goroutine after the
// given duration (at once, on the next loop turn, when after <= 0). Time
// events with the same deadline run in creation order. Loop goroutine only.
func (c *EventCenter) CreateTimeEvent(after time.Duration, f func()) TimerID {
	return c.createTimerAt(time.Now().Add(after), f)
}

// CreateTimeEventAt is CreateTimeEvent with an absolute deadline: time
// events that share one (periodic ticks aligned to a common grid) cost the
// loop one wake-up. Loop goroutine only.
func (c *EventCenter) CreateTimeEventAt(when time.Time, f func()) TimerID {
	return c.createTimerAt(when, f)
}

func (c *EventCenter) createTimerAt(when time.Time, f func()) TimerID {
	ts := &c.timers
	var t *timer
	if n := len(ts.free); n > 0 {
		t = ts.free[n-1]
		ts.free[n-1] = nil
		ts.free = ts.free[:n-1]
	} else {
		t = new(timer)
	}
	ts.next++
	ts.seq++
	*t = timer{when: when, id: ts.next, seq: ts.seq, f: f}
	ts.byID[t.id] = t
	heap.Push(&ts.heap, t)
	return t.id
}

// DeleteTimeEvent cancels a time event that has not run yet; unknown or
// already-run ids are ignored. Loop goroutine only.
func (c *EventCenter) DeleteTimeEvent(id TimerID) {
	ts := &c.timers
	t, ok := ts.byID[id]
	if !ok {
		return
	}
	delete(ts.byID, id)
	heap.Remove(&ts.heap, t.index)
	ts.release(t)
}

func (ts *timers) release(t *timer) {
	*t = timer{index: -1}
	if len(ts.free) < 1024 {
		ts.free = append(ts.free, t)
	}
}

// PendingTimeEvents is the number of scheduled time events. Loop goroutine
// only (or after Stop).
func (c *EventCenter) PendingTimeEvents() int { return len(c.timers.heap) }

// nextDeadline is the deadline of the nearest time event, zero when none.
func (ts *timers) nextDeadline() time.Time {
	if len(ts.heap) == 0 {
		return time.Time{}
	}
	return ts.heap[0].when
}

// runTimers runs the time events due at now. Ones created by callbacks with
// a zero delay wait for the next turn, so file events are not starved.
func (c *EventCenter) runTimers(now time.Time) {
	ts := &c.timers
	for len(ts.heap) > 0 && !ts.heap[0].when.After(now) {
		t := heap.Pop(&ts.heap).(*timer)
		delete(ts.byID, t.id)
		f := t.f
		ts.release(t)
		f()
	}
}
