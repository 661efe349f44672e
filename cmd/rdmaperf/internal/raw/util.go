package raw

import "time"

type timeDur = time.Duration

func sleepShort() { time.Sleep(200 * time.Microsecond) }
