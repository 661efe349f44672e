package clock

const haveTSC = true

// rdtsc reads the time-stamp counter.
func rdtsc() uint64
