// Package cephx owns Ceph's cephx authentication as bytes: secret keys
// (CryptoKey and the keyring files ceph-authtool writes), cephx's
// AES-128-CBC envelope, and the payloads of the cephx exchange that ride in
// msgr2's AUTH_* frames — the client side against a monitor (server
// challenge, CephXAuthenticate, the ticket reply with the session key and the
// connection secret) and the authorizer a client shows other services.
//
// Wire formats follow Ceph's src/auth/cephx (CephxProtocol.h/.cc), and the
// Linux kernel's net/ceph/auth_x.c as a second reading of the same wire. The
// code is our own.
//
// It must not do I/O or know connections: the messenger drives it, frame by
// frame. It imports only the standard library (crypto/aes, crypto/cipher,
// crypto/hmac, crypto/sha256, crypto/rand). Decoders never allocate more than
// the bytes they were given and fail with an error naming the field.
package cephx
