package main

import (
	"context"
	"errors"

	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/perf"
	"github.com/asyncmsgr/asyncmsgr/cmd/rdmaperf/internal/raw"
)

func runMsgr(ctx context.Context, p *perf.Params, oob *perf.OOB, h raw.Hooks) error {
	return errors.New("msgr tests: not yet")
}
