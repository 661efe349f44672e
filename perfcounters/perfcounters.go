package perfcounters

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// Kind says how a value behaves: a Counter only grows, a Gauge goes both ways.
type Kind int

const (
	Counter Kind = iota
	Gauge
)

// Value is one counter or gauge. Its methods are safe from any goroutine.
type Value struct {
	name, desc string
	kind       Kind
	v          atomic.Uint64
	read       func() uint64 // set for read-through values (Func)
}

// Add adds n.
func (v *Value) Add(n uint64) { v.v.Add(n) }

// Inc adds one.
func (v *Value) Inc() { v.v.Add(1) }

// Dec subtracts one (gauges).
func (v *Value) Dec() { v.v.Add(^uint64(0)) }

// Set stores n (gauges).
func (v *Value) Set(n uint64) { v.v.Store(n) }

// Load returns the current value.
func (v *Value) Load() uint64 {
	if v.read != nil {
		return v.read()
	}
	return v.v.Load()
}

// Set is one named group of values (Ceph's PerfCounters instance).
type Set struct {
	name   string
	mu     sync.Mutex // guards values
	values []*Value
	byName map[string]*Value
}

// Name is the set's name as perf dump prints it.
func (s *Set) Name() string { return s.name }

// Add returns the value called name, making it if it is new.
func (s *Set) Add(name, desc string, kind Kind) *Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.byName[name]; ok {
		return v
	}
	v := &Value{name: name, desc: desc, kind: kind}
	s.values = append(s.values, v)
	s.byName[name] = v
	return v
}

// Func adds a value read through f at dump time: for counters a lower layer
// already keeps (f must be safe to call from any goroutine).
func (s *Set) Func(name, desc string, kind Kind, f func() uint64) {
	v := s.Add(name, desc, kind)
	v.read = f
}

// Registry holds the sets of one messenger and its stack.
type Registry struct {
	mu   sync.Mutex // guards sets
	sets map[string]*Set
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{sets: map[string]*Set{}} }

// Set returns the set called name, making it if it is new.
func (r *Registry) Set(name string) *Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sets[name]; ok {
		return s
	}
	s := &Set{name: name, byName: map[string]*Value{}}
	r.sets[name] = s
	return s
}

// Remove drops the set called name (a stack that stopped).
func (r *Registry) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sets, name)
}

// Each calls f for every value, sets in name order, values in the order
// they were added.
func (r *Registry) Each(f func(set, name, desc string, kind Kind, v uint64)) {
	r.mu.Lock()
	names := make([]string, 0, len(r.sets))
	for n := range r.sets {
		names = append(names, n)
	}
	sets := make([]*Set, 0, len(names))
	sort.Strings(names)
	for _, n := range names {
		sets = append(sets, r.sets[n])
	}
	r.mu.Unlock()
	for _, s := range sets {
		s.mu.Lock()
		vals := append([]*Value(nil), s.values...)
		s.mu.Unlock()
		for _, v := range vals {
			f(s.name, v.name, v.desc, v.kind, v.Load())
		}
	}
}

// Dump is Ceph's `perf dump`: {"set": {"value": n, ...}, ...}.
func (r *Registry) Dump() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	cur := ""
	first := true
	r.Each(func(set, name, _ string, _ Kind, v uint64) {
		if set != cur || first {
			if !first {
				b.WriteString("},")
			}
			writeKey(&b, set)
			b.WriteByte('{')
			cur, first = set, false
		} else {
			b.WriteByte(',')
		}
		writeKey(&b, name)
		b.WriteString(strconv.FormatUint(v, 10))
	})
	if !first {
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Schema is Ceph's `perf schema`: each value's type and description.
// Types are Ceph's PERFCOUNTER_U64 (2), with PERFCOUNTER_COUNTER (8) for
// counters.
func (r *Registry) Schema() []byte {
	type entry struct {
		Type        int    `json:"type"`
		MetricType  string `json:"metric_type"`
		ValueType   string `json:"value_type"`
		Description string `json:"description"`
		Nick        string `json:"nick"`
		Priority    int    `json:"priority"`
		Units       string `json:"units"`
	}
	out := map[string]map[string]entry{}
	r.Each(func(set, name, desc string, kind Kind, _ uint64) {
		e := entry{Type: 2, MetricType: "gauge", ValueType: "integer", Description: desc, Priority: 5, Units: "none"}
		if kind == Counter {
			e.Type, e.MetricType = 2|8, "counter"
		}
		if out[set] == nil {
			out[set] = map[string]entry{}
		}
		out[set][name] = e
	})
	b, _ := json.Marshal(out) // maps of plain structs: cannot fail
	return b
}

func writeKey(b *bytes.Buffer, k string) {
	q, _ := json.Marshal(k)
	b.Write(q)
	b.WriteByte(':')
}
