// Package tlsfiles gives the server's two listeners (the HTTP API and the
// embedded MQTT broker) their TLS configuration from certificate and key
// files, reloaded when the files change (checked at most once a second, at
// a handshake) or when Reload is called (SIGHUP), so a renewed certificate
// needs no restart; it also makes a small local CA and server certificates
// for a test deployment (`e4c2 tls init`).
package tlsfiles
