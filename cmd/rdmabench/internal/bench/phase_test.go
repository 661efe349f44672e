package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResultsRoundTrip(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteResults(&b, sample()))
	got, err := ReadResults(&b)
	require.NoError(t, err)
	require.Equal(t, sample(), got)
	_, err = ReadResults(strings.NewReader(`{"series":"x"}` + "\n{oops\n"))
	require.ErrorContains(t, err, "results line 2")
}

func TestWriteReportKeepsHandText(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeJSON(filepath.Join(dir, ConditionsFile), sampleConditions()))
	f, err := os.Create(filepath.Join(dir, ResultsFile))
	require.NoError(t, err)
	require.NoError(t, WriteResults(f, sample()))
	require.NoError(t, f.Close())
	md := filepath.Join(dir, "B.md")
	require.NoError(t, os.WriteFile(md, []byte("# B\n\nhand-written analysis\n"), 0o644))
	var log bytes.Buffer
	require.NoError(t, WriteReport(dir, md, &log))
	doc, err := os.ReadFile(md)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(doc), "# B\n\nhand-written analysis\n\n"+BeginMark+"\n## rdmaperf"))
	require.Contains(t, string(doc), "](B.png)")
	require.Contains(t, log.String(), "wrote "+md)
	// Rendering twice replaces the section instead of appending another.
	require.NoError(t, WriteReport(dir, md, &log))
	again, err := os.ReadFile(md)
	require.NoError(t, err)
	require.Equal(t, string(doc), string(again))
}

func TestParseSizes(t *testing.T) {
	s, err := ParseSizes("2 256,4096")
	require.NoError(t, err)
	require.Equal(t, []int{2, 256, 4096}, s)
	_, err = ParseSizes("2 x")
	require.Error(t, err)
	_, err = ParseSizes("0")
	require.Error(t, err)
}
