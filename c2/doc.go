// Package c2 is the application service of the C2: the one API the HTTP
// server, the operator CLI, the automation engine and the MQTT delivery
// worker call.
//
// Every operation follows the same path (DESIGN.md, one way): read the
// projection state, domain.Decide, seal the key material, Append with the
// expected stream version, then wait until the projections have applied the
// new events, so a caller reads its own writes. On a version conflict
// (another caller or another C2 instance appended first) the service waits
// for the projections to catch up with the stream and decides again, a
// bounded number of times: concurrent operations on one topic all succeed,
// serialized by the store.
//
// Keys are generated here (suite.GenerateKey, GenerateC2Key), never in the
// domain. They are sealed as soon as they are decided and unsealed only to
// build a command at publish time (BuildCommand) or to export them.
package c2
