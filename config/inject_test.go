package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestInjectOptions(t *testing.T) {
	c := Default()
	require.Zero(t, c.Inject, "every ms_inject_* option is off by default")
	require.NoError(t, c.Set("ms inject socket failures", "300"))
	require.NoError(t, c.Set("ms_inject_delay_type", "client osd"))
	require.NoError(t, c.Set("ms_inject_delay_max", "0.01"))
	require.NoError(t, c.Set("ms_inject_delay_probability", "0.1"))
	require.NoError(t, c.Set("ms_inject_internal_delays", "0.002"))
	require.Equal(t, Inject{InjectSocketFailures: 300, InjectDelayType: "client osd",
		InjectDelayMax: 10 * time.Millisecond, InjectDelayProbability: 0.1,
		InjectInternalDelays: 2 * time.Millisecond}, c.Inject)
	require.Equal(t, []string{"client", "osd"}, c.InjectDelayTypes())
	require.NoError(t, c.Validate())
	for name, want := range map[string]string{"ms_inject_delay_probability": "0.1", "ms_inject_delay_max": "0.01"} {
		got, err := c.Get(name)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	require.ErrorContains(t, c.Set("ms_inject_delay_probability", "often"), "ms_inject_delay_probability: invalid number")
}

func TestInjectValidate(t *testing.T) {
	c := Default()
	c.InjectSocketFailures = -1
	c.InjectDelayType = "osd bogus"
	c.InjectDelayMax = -time.Second
	c.InjectDelayProbability = 1.5
	c.InjectInternalDelays = -time.Second
	err := c.Validate()
	require.Error(t, err)
	for _, name := range []string{"ms_inject_socket_failures", "ms_inject_delay_type: \"bogus\"",
		"ms_inject_delay_max", "ms_inject_delay_probability", "ms_inject_internal_delays"} {
		require.True(t, strings.Contains(err.Error(), name), "%s not reported in %v", name, err)
	}
}

func TestInjectFromFile(t *testing.T) {
	c := Default()
	warnings, err := c.Parse(strings.NewReader("[global]\nms inject socket failures = 500\nms inject delay type = osd\n"), "ceph.conf", "client.admin")
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.Equal(t, 500, c.InjectSocketFailures)
	require.Equal(t, "osd", c.InjectDelayType)
}
