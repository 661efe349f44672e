package testenv

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// AdminSocket sends one JSON command to a Ceph admin socket and returns the
// reply, speaking the protocol directly (the command ended by NUL; the reply
// is a big-endian u32 length and that many bytes) so no ceph CLI (slow Python
// in the emulated VM) is started. limit bounds the whole exchange.
func AdminSocket(asok, cmd string, limit time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("unix", asok, limit)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(limit))
	if _, err := c.Write(append([]byte(cmd), 0)); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, fmt.Errorf("admin socket %s: reply length: %w", asok, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 16<<20 {
		return nil, fmt.Errorf("admin socket %s: reply of %d bytes", asok, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, fmt.Errorf("admin socket %s: reply: %w", asok, err)
	}
	return b, nil
}
