package mosquittocfg_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/mosquittocfg"
)

// A line written by mosquitto_passwd 2.0.11 (`mosquitto_passwd -c -b f
// alice secret`): the hash format is mosquitto's, not only ours.
const mosquittoPasswdLine = "alice:$7$101$Ey1Aw88FQIes8LS+$0WA8Exw1kVrOoEB3fJakoUtcdYHCGjGtm4XiF65eBSAro9V+519+WvZ5SeM/WRvOPUzvHnO66Zp/NpBlN6j4IA=="

func TestCheckPasswordMosquittoPasswdVector(t *testing.T) {
	hash := strings.TrimPrefix(mosquittoPasswdLine, "alice:")
	if ok, err := mosquittocfg.CheckPassword(hash, []byte("secret")); err != nil || !ok {
		t.Fatalf("mosquitto_passwd's hash of the right password: %v, %v", ok, err)
	}
	if ok, _ := mosquittocfg.CheckPassword(hash, []byte("Secret")); ok {
		t.Fatal("mosquitto_passwd's hash accepted a wrong password")
	}
	for _, bad := range []string{"", "$6$101$a$b", "$7$x$AAAA$AAAA", "$7$101$!!$AAAA", "$7$0$AAAA$AAAA"} {
		if _, err := mosquittocfg.CheckPassword(bad, []byte("secret")); err == nil {
			t.Errorf("CheckPassword(%q) took a malformed hash", bad)
		}
	}
}

func TestHashPassword(t *testing.T) {
	salt := bytes.NewReader(bytes.Repeat([]byte{7}, 24))
	h1, err := mosquittocfg.HashPassword(salt, []byte("pw"), 101)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := mosquittocfg.HashPassword(salt, []byte("pw"), 101)
	if h1 != h2 || !strings.HasPrefix(h1, "$7$101$BwcHBwcHBwcHBwcH$") {
		t.Fatalf("hash = %s / %s", h1, h2)
	}
	if ok, err := mosquittocfg.CheckPassword(h1, []byte("pw")); err != nil || !ok {
		t.Fatalf("round trip: %v %v", ok, err)
	}
	if _, err := mosquittocfg.HashPassword(bytes.NewReader(nil), []byte("pw"), 101); err == nil {
		t.Fatal("no salt source: no error")
	}
}

func TestValidateC2Username(t *testing.T) {
	for _, ok := range []string{"e4c2", "C2.main_1-a"} {
		if err := mosquittocfg.ValidateC2Username(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a:b", "a\nuser x", strings.Repeat("a", 65), strings.Repeat("ab", 16)} {
		if err := mosquittocfg.ValidateC2Username(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func id(b byte) domain.ID {
	var x domain.ID
	for i := range x {
		x[i] = b
	}
	return x
}

func TestGenerate(t *testing.T) {
	cons, pub, both, pk := id(1), id(2), id(3), id(4)
	cfg := mosquittocfg.Config{
		C2Username: "e4c2", C2Password: []byte("c2 pass"),
		PasswordFile: "/etc/m/password_file", ACLFile: "/etc/m/acl_file",
		Header: "hello\nworld",
		Devices: []mosquittocfg.Device{
			{ID: pk, Role: domain.RoleBoth, PK: true, Topics: []string{"t/pk"}},
			{ID: cons, Name: "sensor\nuser evil", Role: domain.RoleConsumer, Password: "p1",
				Topics: []string{"t/a", "room 1", "e4/" + pub.String(), "e4c2ack/x", "e4", " lead", "a\nuser evil", "t/a"}},
			{ID: pub, Role: domain.RolePublisher, Password: "p2", Topics: []string{"t/a"}},
			{ID: both, Role: domain.RoleBoth, Password: "p3"},
		},
	}
	f, err := mosquittocfg.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f.SKDevices != 3 || f.PKDevices != 1 {
		t.Errorf("counts = %d SK, %d PK", f.SKDevices, f.PKDevices)
	}
	// Password file: the C2 and the SK devices, each password verifies.
	want := map[string]string{"e4c2": "c2 pass", cons.String(): "p1", pub.String(): "p2", both.String(): "p3"}
	seen := 0
	for _, l := range strings.Split(string(f.Password), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		u, h, _ := strings.Cut(l, ":")
		pw, ok := want[u]
		if !ok {
			t.Errorf("unexpected password line for %q", u)
			continue
		}
		seen++
		if ok, err := mosquittocfg.CheckPassword(h, []byte(pw)); err != nil || !ok {
			t.Errorf("password of %s does not verify: %v", u, err)
		}
		if u == "e4c2" && !strings.HasPrefix(h, "$7$100000$") || u != "e4c2" && !strings.HasPrefix(h, "$7$101$") {
			t.Errorf("iterations of %s: %s", u, h)
		}
	}
	if seen != 4 {
		t.Errorf("%d password lines, want 4 (no PK line)", seen)
	}
	// ACL: exactly the grants, in id order; bad topics left out.
	var grants []string
	for _, l := range strings.Split(string(f.ACL), "\n") {
		if l != "" && l[0] != '#' {
			grants = append(grants, l)
		}
	}
	u := credential.Username
	wantGrants := []string{
		"user e4c2", "topic readwrite #",
		"user " + u(cons[:]), "topic read e4/" + u(cons[:]), "topic write e4c2ack/" + u(cons[:]),
		"topic read room 1", "topic read t/a",
		"user " + u(pub[:]), "topic read e4/" + u(pub[:]), "topic write e4c2ack/" + u(pub[:]), "topic readwrite t/a",
		"user " + u(both[:]), "topic read e4/" + u(both[:]), "topic write e4c2ack/" + u(both[:]),
		"user " + u(pk[:]), "topic read e4/" + u(pk[:]), "topic write e4c2ack/" + u(pk[:]), "topic readwrite t/pk",
	}
	if strings.Join(grants, "\n") != strings.Join(wantGrants, "\n") {
		t.Errorf("ACL grants:\n%s\nwant:\n%s\nfile:\n%s", strings.Join(grants, "\n"), strings.Join(wantGrants, "\n"), f.ACL)
	}
	if len(f.Skipped) != 5 {
		t.Errorf("skipped = %+v, want the 5 unsafe topics", f.Skipped)
	}
	if !strings.Contains(string(f.Snippet), "allow_anonymous false\npassword_file /etc/m/password_file\nacl_file /etc/m/acl_file\n") ||
		!strings.Contains(string(f.Snippet), "#   use_username_as_clientid true") {
		t.Errorf("snippet:\n%s", f.Snippet)
	}
	for _, b := range [][]byte{f.Password, f.ACL, f.Snippet} {
		if !bytes.HasPrefix(b, []byte("# hello\n# world\n")) {
			t.Errorf("no header: %.40q", b)
		}
		if bytes.Contains(b, []byte("c2 pass")) || bytes.Contains(b, []byte(":p1")) {
			t.Error("a password in clear in the output")
		}
	}

	if strings.Contains(string(f.ACL), "$SYS") || strings.Contains(string(f.Snippet), "log_dest") {
		t.Error("sightings lines without Sightings")
	}
	cfg.Sightings = true
	if f, err = mosquittocfg.Generate(cfg); err != nil {
		t.Fatal(err)
	}
	// The C2 alone may read the subscription log, which the snippet turns on.
	if !strings.Contains(string(f.ACL), "user e4c2\ntopic readwrite #\ntopic read $SYS/broker/log/M/subscribe\n") ||
		strings.Count(string(f.ACL), "$SYS") != 1 {
		t.Errorf("sightings ACL:\n%s", f.ACL)
	}
	if !strings.Contains(string(f.Snippet), "\nlog_dest topic\n") || !strings.Contains(string(f.Snippet), "\nlog_type subscribe\n") {
		t.Errorf("sightings snippet:\n%s", f.Snippet)
	}
	cfg.Sightings = false

	for l, want := range map[string]string{"127.0.0.1:1883": "listener 1883 127.0.0.1", "[::1]:8883": "listener 8883 ::1", "1883": "listener 1883"} {
		cfg.Listener = l
		f, err = mosquittocfg.Generate(cfg)
		if err != nil || !strings.Contains(string(f.Snippet), "\n"+want+"\nuse_username_as_clientid true\n") {
			t.Errorf("snippet with listener %s: %v\n%s", l, err, f.Snippet)
		}
	}

	for name, mut := range map[string]func(*mosquittocfg.Config){
		"no C2 password":        func(c *mosquittocfg.Config) { c.C2Password = nil },
		"C2 password line feed": func(c *mosquittocfg.Config) { c.C2Password = []byte("a\nb") },
		"bad C2 username":       func(c *mosquittocfg.Config) { c.C2Username = "a b" },
		"SK without password":   func(c *mosquittocfg.Config) { c.Devices = []mosquittocfg.Device{{ID: cons}} },
		"path with line feed":   func(c *mosquittocfg.Config) { c.ACLFile = "/x\nallow_anonymous true" },
		"listener injection":    func(c *mosquittocfg.Config) { c.Listener = "1883\nallow_anonymous true" },
		"listener bad host":     func(c *mosquittocfg.Config) { c.Listener = "a b:1883" },
		"listener bad port":     func(c *mosquittocfg.Config) { c.Listener = "localhost:0" },
	} {
		c := cfg
		mut(&c)
		if _, err := mosquittocfg.Generate(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
