// Package e4mqtt connects an E4 device (a client.Client) to an MQTT broker
// with paho: it subscribes to the device's control topic with QoS 2 and
// applies every command the C2 sends, decrypts application messages on the
// topics it subscribes to, and protects what it publishes.
//
// The session is persistent (CleanSession false, a stable client id derived
// from the device id) so that commands the C2 published while the device was
// offline are delivered when it reconnects: losing a SetTopicKey would leave
// the device unable to read a rotated topic.
package e4mqtt
