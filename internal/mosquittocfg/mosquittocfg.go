// Package mosquittocfg generates the authentication and access-control
// files of an external mosquitto 2.x broker for an E4 C2: a password_file,
// an acl_file and a configuration snippet that includes them.
//
// The embedded broker authenticates every device with its E4-derived
// credential (package client/credential) and confines it to its own
// topics. A deployment with an external mosquitto needs the same
// confinement, written in mosquitto's own static formats, so that the
// broker stays a plain, unmodified mosquitto:
//
//   - the C2's user may read and write everything;
//   - a device (username = hex of its E4 id) may read its control topic
//     "e4/<hex id>", write its acknowledgement topic "e4c2ack/<hex id>",
//     read each topic it is attached to and write it when its role is
//     publisher or both; nothing else;
//   - an SK device authenticates with its SK password, hashed here as
//     mosquitto_passwd does (PBKDF2-SHA512, "$7$");
//   - a PK device's password is a signed, timestamped message that expires
//     after minutes: it cannot be a line of a static file, so a PK device
//     gets its ACL lines and no password line, and must authenticate by
//     other means (TLS client certificates with use_identity_as_username).
//
// The package only formats: the caller collects the devices (with their
// SK passwords computed from the identity keys) and writes the files.
package mosquittocfg

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// AckTopicPrefix starts the topic on which a device may acknowledge
// commands ("e4c2ack/<hex id>", the device acknowledgement extension).
const AckTopicPrefix = "e4c2ack/"

// File names written into the output directory.
const (
	PasswordFileName = "password_file"
	ACLFileName      = "acl_file"
	SnippetFileName  = "mosquitto.conf.snippet"
)

// Iteration counts of the PBKDF2 hashes. mosquitto hashes the presented
// password at every CONNECT, so the count is CPU spent per connection.
// A device password is 256 bits of HMAC output: stretching adds nothing
// to it, so devices get mosquitto_passwd's default. The C2's password is
// chosen by an operator and may be weak: it gets a real work factor.
const (
	DeviceIterations = 101
	C2Iterations     = 100_000
)

// saltLen and hashLen are those of mosquitto_passwd (mosquitto 2.x).
const (
	saltLen = 12
	hashLen = 64
)

// Device is one registered E4 client as the broker must see it.
type Device struct {
	ID   domain.ID
	Name string // for a comment in the ACL file only
	Role domain.Role
	// PK: the device authenticates with a PK password (no static line).
	PK bool
	// Password is the SK password (credential.SKPassword); empty for PK.
	Password string
	// Topics are the E4 topics the device is attached to.
	Topics []string
}

// SubscribeLogTopic is where mosquitto publishes its subscription log with
// "log_dest topic" and "log_type subscribe" (transport/mqtt reads it).
const SubscribeLogTopic = "$SYS/broker/log/M/subscribe"

// Config is what Generate formats.
type Config struct {
	// C2Username and C2Password authenticate the C2 itself (readwrite on
	// everything).
	C2Username string
	C2Password []byte
	Devices    []Device
	// PasswordFile and ACLFile are the paths the snippet names (absolute
	// paths of the written files, as mosquitto will open them).
	PasswordFile, ACLFile string
	// Listener, if set ("host:port" or "port"), adds a listener block to
	// the snippet with the listener options the confinement needs.
	Listener string
	// Sightings lets the C2 see devices subscribe (serve
	// --broker-log-sightings): the snippet turns on mosquitto's
	// subscription log on a topic, and the C2 may read that topic.
	Sightings bool
	// Header is a comment put at the top of every file (e.g. the store
	// position the files were generated from).
	Header string
	// Rand is the salt source (crypto/rand when nil).
	Rand io.Reader
}

// Skipped is a topic that cannot be granted safely and was left out.
type Skipped struct {
	Device domain.ID
	Topic  string
	Reason string
}

// Files is the generated content.
type Files struct {
	Password, ACL, Snippet []byte
	SKDevices, PKDevices   int
	Skipped                []Skipped
}

// ErrInvalid: the configuration cannot be written safely.
var ErrInvalid = errors.New("mosquittocfg: invalid configuration")

// ValidateC2Username checks the C2's username: 1..64 characters of
// [A-Za-z0-9._-], and not a device username. The set is narrow on purpose:
// the name goes into a ':'-separated password file and a line-oriented ACL
// file, and a 32-hex-character name would collide with a device's.
func ValidateC2Username(u string) error {
	if u == "" || len(u) > 64 {
		return fmt.Errorf("%w: the C2 username must be 1..64 characters", ErrInvalid)
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: the C2 username may hold only letters, digits, '.', '_' and '-'", ErrInvalid)
		}
	}
	if _, ok := credential.ParseUsername(u); ok {
		return fmt.Errorf("%w: the C2 username %q is a device username (32 hex characters)", ErrInvalid, u)
	}
	return nil
}

// topicProblem says why a topic cannot be granted in an ACL line, "" if it
// can. The C2 accepts any UTF-8 topic without wildcards; an ACL line is
// stricter: a line break would inject lines, leading or trailing blanks are
// trimmed by mosquitto's parser, and a topic under a reserved prefix would
// hand a device another device's control or acknowledgement topic.
func topicProblem(t string) string {
	if err := core.ValidateTopic(t); err != nil {
		return err.Error()
	}
	for _, r := range t {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "control character in the topic name"
		}
	}
	if strings.TrimSpace(t) != t {
		return "leading or trailing white space (mosquitto's ACL parser trims it)"
	}
	for _, p := range []string{core.ControlTopicPrefix, AckTopicPrefix} {
		if strings.HasPrefix(t, p) || t == strings.TrimSuffix(p, "/") {
			return "under the reserved prefix " + p
		}
	}
	return ""
}

// Generate formats the three files.
func Generate(cfg Config) (Files, error) {
	var f Files
	if err := ValidateC2Username(cfg.C2Username); err != nil {
		return f, err
	}
	if len(cfg.C2Password) == 0 {
		return f, fmt.Errorf("%w: empty C2 password", ErrInvalid)
	}
	if bytes.ContainsAny(cfg.C2Password, "\r\n") {
		return f, fmt.Errorf("%w: the C2 password holds a line break", ErrInvalid)
	}
	for _, p := range []string{cfg.PasswordFile, cfg.ACLFile} {
		if p == "" || strings.ContainsAny(p, "\r\n") {
			return f, fmt.Errorf("%w: file path %q", ErrInvalid, p)
		}
	}
	if err := ValidateListener(cfg.Listener); err != nil {
		return f, err
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	devs := slices.Clone(cfg.Devices)
	slices.SortFunc(devs, func(a, b Device) int { return bytes.Compare(a.ID[:], b.ID[:]) })

	var pw, acl bytes.Buffer
	header := comment(cfg.Header)
	pw.WriteString(header)
	acl.WriteString(header)
	h, err := HashPassword(r, cfg.C2Password, C2Iterations)
	if err != nil {
		return f, err
	}
	fmt.Fprintf(&pw, "%s:%s\n", cfg.C2Username, h)
	acl.WriteString("# No line precedes the first \"user\": anonymous clients get nothing.\n\n")
	fmt.Fprintf(&acl, "# The C2.\nuser %s\ntopic readwrite #\n", cfg.C2Username)
	if cfg.Sightings {
		// "#" does not match $SYS topics; no device gets this line.
		fmt.Fprintf(&acl, "topic read %s\n", SubscribeLogTopic)
	}

	for _, d := range devs {
		user := credential.Username(d.ID[:])
		if d.PK {
			f.PKDevices++
		} else {
			if len(d.Password) == 0 {
				return f, fmt.Errorf("%w: SK device %s has no password", ErrInvalid, user)
			}
			f.SKDevices++
			h, err := HashPassword(r, []byte(d.Password), DeviceIterations)
			if err != nil {
				return f, err
			}
			fmt.Fprintf(&pw, "%s:%s\n", user, h)
		}
		acl.WriteString("\n# ")
		if d.Name != "" {
			acl.WriteString(printable(d.Name) + ", ")
		}
		fmt.Fprintf(&acl, "role %s", d.Role)
		if d.PK {
			acl.WriteString(", PK: no password line, authenticate it by TLS client certificate (CN = username)")
		}
		fmt.Fprintf(&acl, "\nuser %s\ntopic read %s\ntopic write %s\n", user, core.ControlTopic(d.ID[:]), AckTopicPrefix+user)
		topics := slices.Clone(d.Topics)
		slices.Sort(topics)
		for _, t := range slices.Compact(topics) {
			if why := topicProblem(t); why != "" {
				f.Skipped = append(f.Skipped, Skipped{Device: d.ID, Topic: t, Reason: why})
				continue
			}
			access := "read"
			if d.Role == domain.RolePublisher || d.Role == domain.RoleBoth {
				access = "readwrite"
			}
			fmt.Fprintf(&acl, "topic %s %s\n", access, t)
		}
	}
	f.Password, f.ACL = pw.Bytes(), acl.Bytes()
	f.Snippet = snippet(cfg, header)
	return f, nil
}

func snippet(cfg Config, header string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString(`# Include these lines in mosquitto.conf (mosquitto 2.x). The security
# options are global: every listener uses the same password and ACL files.
per_listener_settings false
allow_anonymous false
password_file ` + cfg.PasswordFile + `
acl_file ` + cfg.ACLFile + `
`)
	if cfg.Listener != "" {
		host, port := "", cfg.Listener
		if i := strings.LastIndexByte(cfg.Listener, ':'); i >= 0 {
			host, port = cfg.Listener[:i], cfg.Listener[i+1:]
		}
		fmt.Fprintf(&b, "\nlistener %s", port)
		if host != "" {
			fmt.Fprintf(&b, " %s", strings.Trim(host, "[]"))
		}
		b.WriteString("\n")
	} else {
		b.WriteString("\n# Under EVERY listener line of mosquitto.conf, add:\n#\n")
	}
	prefix := ""
	if cfg.Listener == "" {
		prefix = "#   "
	}
	b.WriteString(prefix + "use_username_as_clientid true\n")
	b.WriteString(`
# use_username_as_clientid ties the MQTT session to the authenticated
# username: a client presenting another device's client id gets its own
# session instead of taking over the device's. It is a listener option and
# is not reloaded on SIGHUP; the password and ACL files are.
`)
	if cfg.Sightings {
		b.WriteString(`
# Sightings (e4c2 serve --broker-log-sightings): mosquitto publishes one
# line per subscription on ` + SubscribeLogTopic + `, which the C2 reads
# (a device subscribing to its control topic counts as seen). log_type
# lines replace mosquitto's default set: keep the ones you log today.
log_dest topic
log_type error
log_type warning
log_type notice
log_type information
log_type subscribe
`)
	}
	return b.Bytes()
}

// ValidateListener checks a [HOST:]PORT listener: it becomes a line of
// mosquitto.conf, so nothing but a port and a host name or address.
func ValidateListener(l string) error {
	if l == "" {
		return nil
	}
	host, port := "", l
	if i := strings.LastIndexByte(l, ':'); i >= 0 {
		host, port = l[:i], l[i+1:]
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%w: listener %q: the port must be 1..65535", ErrInvalid, l)
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]_", r)) {
			return fmt.Errorf("%w: listener %q: the host must be a name or an address", ErrInvalid, l)
		}
	}
	return nil
}

func comment(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		b.WriteString("# " + printable(l) + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// printable makes s safe for a one-line comment.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

// HashPassword returns password hashed as mosquitto_passwd does in
// mosquitto 2.x: "$7$<iterations>$<base64 salt>$<base64 hash>", PBKDF2 with
// HMAC-SHA512, a 12-byte salt and a 64-byte output, standard base64 with
// padding.
func HashPassword(r io.Reader, password []byte, iterations int) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("mosquittocfg: salt: %w", err)
	}
	return hashWithSalt(password, salt, iterations)
}

func hashWithSalt(password, salt []byte, iterations int) (string, error) {
	if iterations < 1 {
		return "", fmt.Errorf("%w: %d iterations", ErrInvalid, iterations)
	}
	dk, err := pbkdf2.Key(sha512.New, string(password), salt, iterations, hashLen)
	if err != nil {
		return "", fmt.Errorf("mosquittocfg: pbkdf2: %w", err)
	}
	return "$7$" + strconv.Itoa(iterations) + "$" + base64.StdEncoding.EncodeToString(salt) + "$" +
		base64.StdEncoding.EncodeToString(dk), nil
}

// CheckPassword reports whether password matches a "$7$" hash: for tests
// and for an operator checking a line, never used by the broker.
func CheckPassword(hash string, password []byte) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return false, fmt.Errorf("%w: not a mosquitto $7$ hash", ErrInvalid)
	}
	iter, err := strconv.Atoi(parts[2])
	if err != nil {
		return false, fmt.Errorf("%w: iterations: %w", ErrInvalid, err)
	}
	salt, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return false, fmt.Errorf("%w: salt: %w", ErrInvalid, err)
	}
	got, err := hashWithSalt(password, salt, iter)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1, nil
}
