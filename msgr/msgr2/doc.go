// Package msgr2 is the wire codec of Ceph's msgr2 protocol, revision 1
// (msgr2.1) in crc mode, as Ceph 16.2 speaks it: the banner, frames
// (preamble, segments with the inline first-segment crc, epilogue), the
// control frame payloads (HELLO, AUTH_*, CLIENT_IDENT, SERVER_IDENT,
// SESSION_*, KEEPALIVE2, ACK, ...), ceph_msg_header2 and the encodings of
// entity_addr_t and entity_addrvec_t.
//
// It owns byte layouts only. It must not do I/O, keep connection state,
// decide protocol flow (that is the messenger's session state machine in
// package msgr) or implement secure mode, compression or cephx. Decoders
// never panic on peer input, never allocate more than the input they are
// given, and return errors that match ErrProtocol. Encoders append to a
// caller-owned slice and allocate nothing else.
//
// Facts come from Ceph's sources (src/msg/async/frames_v2.{h,cc},
// ProtocolV2.cc, src/msg/msg_types.h, src/include/msgr.h, doc/dev/msgr2.rst):
//
//   - Checksums are Ceph's ceph_crc32c (CRC-32C, register seeded with the
//     given value, no final inversion): seed 0 for the preamble, seed
//     0xffffffff for segments. See CRC32C.
//   - Frame (rev1, crc mode): 32-byte preamble; if segment 1 is non-empty,
//     its bytes and its le32 crc; segments 2..n; and only when the frame has
//     more than one segment a 13-byte epilogue (late_status, three le32
//     crcs for segments 2..4, unused ones zero). Trailing empty segments
//     are not sent (num_segments counts up to the last non-empty one).
//
// Notes for the messenger (differences from the sketched contract):
//
//   - ParseFrameRest returns ErrFrameAborted (not a ProtocolError) when the
//     sender aborted a multi-segment frame; drop the frame, keep the
//     connection.
//   - Besides the contract, there are ParseFrame (one call for a whole
//     buffered frame), FirstSegmentLen/ParseFirstSegment (read the message
//     header before the rest), AppendControlFrame + the Payload interface +
//     UnmarshalPayload (encode/decode any control frame by tag), ParseMessage,
//     and the AuthReplyMore, AuthRequestMore, AuthSignature and Wait
//     payloads.
//   - The HELLO/IDENT entity address family travels little-endian (msgr2
//     always uses the addr2 encoding; only the legacy marker-0 form puts
//     the family in network byte order). IPv6 flowinfo/scope id are dropped.
//   - KEEPALIVE2 timestamps: the zero time.Time is sent as 0.0 and 0.0
//     decodes to the zero time.Time.
//   - After AUTH_DONE both sides send AUTH_SIGNATURE (ProtocolV2::
//     finish_auth), all zeros with auth none; a Ceph 16.2 monitor waits for
//     ours before it reads CLIENT_IDENT. TestInteropCephMon walks the whole
//     client handshake and a MESSAGE round trip against a real ceph-mon
//     (started on loopback when ceph-mon, monmaptool and ceph-authtool are
//     installed; ASYNCMSGR_CEPH_MON=ip:port uses a running one instead).
package msgr2
