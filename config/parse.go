package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvPrefix starts the environment variables ApplyEnv reads:
// ASYNCMSGR_MS_ASYNC_TRANSPORT_TYPE=rdma sets ms_async_transport_type.
const EnvPrefix = "ASYNCMSGR_"

// maxLineLen bounds one (joined) line of a configuration file.
const maxLineLen = 1 << 20

// setting is one key = value line of a file.
type setting struct {
	key, value string
	line       int
}

// sectionsFor lists, lowest precedence first, the sections that apply to an
// entity section name the way Ceph resolves them: [global], then the type
// ([client] for "client.admin"), then the full name ([client.admin]).
func sectionsFor(section string) []string {
	s := []string{"global"}
	section = strings.ToLower(strings.TrimSpace(section))
	if section == "" || section == "global" {
		return s
	}
	if typ, _, ok := strings.Cut(section, "."); ok && typ != "" {
		s = append(s, typ)
	}
	return append(s, section)
}

// Parse reads a ceph.conf-style file and applies it to c. Options are taken
// from [global] and, when section is not empty, from the sections for that
// entity, later ones overriding: for "client.admin", [global] then [client]
// then [client.admin] (Ceph's precedence); other sections are ignored. name
// is used in error messages (e.g. the file name).
//
// Syntax (Ceph's): "[section]" headers; "key = value" lines, where spaces,
// '-' and '_' are interchangeable in keys and case does not matter; '#' or
// ';' starts a comment (outside quotes); values may be "double-quoted" (with
// \" and \\ escapes) or 'single-quoted'; a trailing backslash continues a
// line. Sizes take Ceph's suffixes (see Config), booleans true/false, yes/no,
// on/off or an integer, durations a number of seconds.
//
// Keys that do not start with ms_ are other Ceph options and are ignored, as
// are the ms_* options Ceph defines that asyncmsgr does not use. ms_type and
// ms_public_type select the transport ("async+rdma" → rdma). An unknown ms_*
// option is not fatal (Ceph only warns too): it is returned in warnings. A
// malformed line or value is an error and c is left unchanged.
func (c *Config) Parse(r io.Reader, name, section string) (warnings []string, err error) {
	bySection, warnings, err := readConf(r, name)
	if err != nil {
		return warnings, err
	}
	next := *c
	for _, sec := range sectionsFor(section) {
		for _, s := range bySection[sec] {
			w, err := next.apply(s.key, s.value)
			if err != nil {
				return warnings, fmt.Errorf("config: %s:%d: %w", name, s.line, err)
			}
			if w != "" {
				warnings = append(warnings, fmt.Sprintf("%s:%d: %s", name, s.line, w))
			}
		}
	}
	*c = next
	return warnings, nil
}

// ParseFile is Parse on the named file.
func (c *Config) ParseFile(path, section string) (warnings []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return c.Parse(f, path, section)
}

// apply sets one key; it returns a warning for an unknown ms_* key.
func (c *Config) apply(key, value string) (warning string, err error) {
	n := NormalizeName(key)
	switch {
	case transportOptions[n]:
		return "", c.setTransportFromType(n, value)
	case optionIndex[n] != nil:
		return "", optionIndex[n].set(c, value)
	case cephOnlyOptions[n] || !strings.HasPrefix(n, "ms_"):
		return "", nil
	}
	return fmt.Sprintf("unknown option %s ignored", n), nil
}

// readConf parses the file into settings per (lower-cased) section.
func readConf(r io.Reader, name string) (map[string][]setting, []string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	out := make(map[string][]setting)
	section := ""
	lineNo := 0
	for {
		line, start, ok, err := nextLine(sc, &lineNo)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %s:%d: %w", name, start, err)
		}
		if !ok {
			break
		}
		if len(line) > maxLineLen {
			return nil, nil, fmt.Errorf("config: %s:%d: line longer than %d bytes", name, start, maxLineLen)
		}
		body := strings.TrimSpace(line)
		if body == "" || body[0] == '#' || body[0] == ';' {
			continue
		}
		if body[0] == '[' {
			end := strings.IndexByte(body, ']')
			if end < 0 {
				return nil, nil, fmt.Errorf("config: %s:%d: section header %q lacks ']'", name, start, body)
			}
			if rest := strings.TrimSpace(body[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				return nil, nil, fmt.Errorf("config: %s:%d: text after section header: %q", name, start, rest)
			}
			s := strings.ToLower(strings.TrimSpace(body[1:end]))
			if s == "" || strings.ContainsAny(s, "[") {
				return nil, nil, fmt.Errorf("config: %s:%d: bad section header %q", name, start, body)
			}
			section = s
			continue
		}
		key, value, ok := strings.Cut(body, "=")
		if !ok || strings.ContainsAny(key, "#;") {
			return nil, nil, fmt.Errorf("config: %s:%d: expected \"key = value\", got %q", name, start, body)
		}
		key = strings.TrimSpace(key)
		if key == "" {
			return nil, nil, fmt.Errorf("config: %s:%d: empty option name", name, start)
		}
		if strings.ContainsAny(key, "\"'") {
			return nil, nil, fmt.Errorf("config: %s:%d: bad option name %q", name, start, key)
		}
		if section == "" {
			return nil, nil, fmt.Errorf("config: %s:%d: option %q outside of a section", name, start, key)
		}
		v, err := parseValue(value)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %s:%d: %s: %w", name, start, NormalizeName(key), err)
		}
		out[section] = append(out[section], setting{key: key, value: v, line: start})
	}
	return out, nil, nil
}

// nextLine returns the next logical line (physical lines joined where one
// ends in a backslash) and the number of its first physical line.
func nextLine(sc *bufio.Scanner, lineNo *int) (line string, start int, ok bool, err error) {
	var b strings.Builder
	start = *lineNo + 1
	for sc.Scan() {
		*lineNo++
		t := strings.TrimRight(sc.Text(), "\r")
		if strings.HasSuffix(t, "\\") {
			b.WriteString(t[:len(t)-1])
			if b.Len() > maxLineLen {
				return "", start, false, fmt.Errorf("line longer than %d bytes", maxLineLen)
			}
			continue
		}
		b.WriteString(t)
		return b.String(), start, true, nil
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return "", start, false, fmt.Errorf("line longer than %d bytes", maxLineLen)
		}
		return "", start, false, err
	}
	if b.Len() > 0 {
		return b.String(), start, true, nil
	}
	return "", start, false, nil
}

// parseValue reads the text after '=': a value quoted with " (with \"
// and \\ escapes) or ' and then only an optional comment, or unquoted
// text up to a '#' or ';' comment. Like Ceph, quotes are special only at
// the start of the value, and the result is trimmed of surrounding spaces
// (also inside quotes).
func parseValue(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || (v[0] != '"' && v[0] != '\'') {
		if i := strings.IndexAny(v, "#;"); i >= 0 {
			v = v[:i]
		}
		return strings.TrimSpace(v), nil
	}
	q := v[0]
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		ch := v[i]
		if q == '"' && ch == '\\' && i+1 < len(v) {
			i++
			b.WriteByte(v[i])
			continue
		}
		if ch == q {
			if rest := strings.TrimSpace(v[i+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				return "", fmt.Errorf("text after quoted value: %q", rest)
			}
			return strings.TrimSpace(b.String()), nil
		}
		b.WriteByte(ch)
	}
	return "", fmt.Errorf("unterminated %c quote", q)
}

// quote writes v so that Parse reads it back unchanged (except for
// surrounding spaces, which Parse trims like Ceph).
func quote(v string) string {
	if v == "" || (v[0] != '"' && v[0] != '\'' && !strings.ContainsAny(v, "#;\n\r") && !strings.HasSuffix(v, "\\")) {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

// WriteTo writes every option of c as a [global] section that Parse reads
// back to the same values (strings containing line breaks are not
// representable and are written quoted on one line).
func (c *Config) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	b.WriteString("[global]\n")
	for _, o := range options {
		fmt.Fprintf(&b, "\t%s = %s\n", o.name, quote(o.format(c)))
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ApplyEnv applies ASYNCMSGR_<OPTION>=value entries of environ (as returned
// by os.Environ); the option part is normalised like file keys
// (ASYNCMSGR_MS_ASYNC_TRANSPORT_TYPE). Unknown ASYNCMSGR_ variables are
// returned as warnings; a malformed value is an error naming the variable,
// and then c is left unchanged.
func (c *Config) ApplyEnv(environ []string) (warnings []string, err error) {
	next := *c
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		n := NormalizeName(k[len(EnvPrefix):])
		switch {
		case transportOptions[n]:
			err = next.setTransportFromType(n, v)
		case optionIndex[n] != nil:
			err = optionIndex[n].set(&next, strings.TrimSpace(v))
		default:
			warnings = append(warnings, fmt.Sprintf("environment variable %s: unknown option %s ignored", k, n))
			continue
		}
		if err != nil {
			return warnings, fmt.Errorf("config: environment variable %s: %w", k, err)
		}
	}
	*c = next
	return warnings, nil
}

// Load builds a Config: Default, then the file at path (if path is not
// empty; see Parse for section), then the ASYNCMSGR_* environment, then
// Validate. Warnings (unknown options) are logged at Warn level through
// slog.Default() (the Config's Logger is not set yet); use LoadWithWarnings
// to get them instead.
func Load(path, section string) (*Config, error) {
	c, warnings, err := LoadWithWarnings(path, section, os.Environ())
	for _, w := range warnings {
		c.Log().Warn("config: " + w)
	}
	return c, err
}

// LoadWithWarnings is Load with an explicit environment that returns the
// warnings instead of logging them.
func LoadWithWarnings(path, section string, environ []string) (*Config, []string, error) {
	c := Default()
	var warnings []string
	if path != "" {
		w, err := c.ParseFile(path, section)
		warnings = append(warnings, w...)
		if err != nil {
			return nil, warnings, err
		}
	}
	w, err := c.ApplyEnv(environ)
	warnings = append(warnings, w...)
	if err != nil {
		return nil, warnings, err
	}
	if err := c.Validate(); err != nil {
		return nil, warnings, err
	}
	return c, warnings, nil
}
