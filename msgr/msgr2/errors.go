package msgr2

import (
	"errors"
	"fmt"
)

// ErrProtocol is matched (errors.Is) by every decode error of this package.
var ErrProtocol = errors.New("msgr2: protocol error")

// ErrFrameAborted is returned by ParseFrameRest when the sender aborted the
// frame after transmitting it (late_status ABORTED). The frame must be
// dropped; it is not a protocol violation and the connection stays up. It is
// not a *ProtocolError.
var ErrFrameAborted = errors.New("msgr2: frame aborted by sender")

// ProtocolError describes malformed input from the peer. Its text says what
// was wrong; errors.Is(err, ErrProtocol) reports true for it.
type ProtocolError struct {
	Msg string
}

// Error returns "msgr2: " followed by the description.
func (e *ProtocolError) Error() string { return "msgr2: " + e.Msg }

// Is makes errors.Is(err, ErrProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// errShort is returned for truncated payloads; built once (no allocation on
// the error path of hot decoders).
var errShort = &ProtocolError{Msg: "short frame"}
