package domain_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/domain"
)

// TestKeyCommandsDoNotPrintKeys checks that no fmt verb prints the key
// material of the commands that carry it.
func TestKeyCommandsDoNotPrintKeys(t *testing.T) {
	key := []byte{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x17, 0x28}
	cmds := []any{
		domain.RegisterClient{Name: "dev", Key: key},
		domain.PutTopic{Topic: "t", Key: key},
		domain.RotateClientKey{Key: key},
		domain.RotateC2Key{Public: []byte{1}, Private: key},
	}
	for _, v := range cmds {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			got := strings.ToLower(fmt.Sprintf(verb, v))
			if strings.Contains(got, hex.EncodeToString(key)) || strings.Contains(got, fmt.Sprint(key)[1:12]) ||
				strings.Contains(got, fmt.Sprintf("%q", key)[1:12]) {
				t.Errorf("%T printed with %s leaks its key: %s", v, verb, got)
			}
		}
	}
	if got := fmt.Sprint(domain.PutTopic{Topic: "t", Key: key}); !strings.Contains(got, `Topic:"t"`) {
		t.Errorf("PutTopic prints %q, want its topic", got)
	}
}

func TestSecretNotPrinted(t *testing.T) {
	sec := domain.NewSecret([]byte("supersecretkeymaterial"))
	ev := &domain.TopicCreated{Name: "t", Key: sec}
	for _, s := range []string{fmt.Sprintf("%v", ev), fmt.Sprintf("%+v", *ev), fmt.Sprintf("%#v", *ev), fmt.Sprintf("%s", sec)} {
		if strings.Contains(s, "supersecret") || strings.Contains(s, "73757065") {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

// TestSecretSealWith checks the one way out of a Secret's clear bytes: the
// codec's seal function gets them exactly when there are some, and a sealed
// Secret passes its sealed bytes through without calling it.
func TestSecretSealWith(t *testing.T) {
	calls := 0
	seal := func(plain []byte) ([]byte, error) {
		calls++
		return append([]byte("sealed:"), plain...), nil
	}
	got, err := domain.NewSecret([]byte("k")).SealWith(seal)
	if err != nil || string(got) != "sealed:k" || calls != 1 {
		t.Fatalf("clear secret: %q, %v, %d calls", got, err, calls)
	}
	got, err = domain.SealedSecret([]byte("already")).SealWith(seal)
	if err != nil || string(got) != "already" || calls != 1 {
		t.Fatalf("sealed secret: %q, %v, %d calls", got, err, calls)
	}
	wiped := domain.NewSecret([]byte("k"))
	wiped.Wipe()
	if got, _ := wiped.SealWith(seal); got != nil || calls != 1 {
		t.Fatalf("wiped secret sealed to %q", got)
	}
}
