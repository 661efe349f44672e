package msgrhook

// FaultConn cuts the socket of c, a *msgr.Connection, underneath it (a
// shutdown of the sending side, so that the peer sees EOF and closes too)
// and lets both sides discover the fault through their normal paths. It is
// typed any because msgr imports this package, not the other way round.
var FaultConn func(c any)
