package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParsePointInTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in      string
		pos     uint64
		t       time.Time
		wantErr bool
	}{
		{in: ""},
		{in: "42", pos: 42},
		{in: "2026-01-01T00:00:00Z", t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2h", t: now.Add(-2 * time.Hour)},
		{in: "-2h", wantErr: true},
		{in: "yesterday", wantErr: true},
		{in: "99999999999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		pos, got, err := parsePointInTime(tt.in, now)
		if (err != nil) != tt.wantErr {
			t.Errorf("parsePointInTime(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if pos != tt.pos || !got.Equal(tt.t) {
			t.Errorf("parsePointInTime(%q) = %d, %v; want %d, %v", tt.in, pos, got, tt.pos, tt.t)
		}
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	key := bytes.Repeat([]byte{0xab, 0x01}, 16)
	if err := writeKeyFile(p, key, 0o600, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %#o, want 0600", fi.Mode().Perm())
	}
	got, err := readKeyFile(p)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("readKeyFile = %x, %v", got, err)
	}
	if err := writeKeyFile(p, key, 0o600, false); err == nil {
		t.Error("existing file overwritten without force")
	}
	if err := writeKeyFile(p, []byte{1}, 0o600, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := readKeyFile(p); !bytes.Equal(got, []byte{1}) {
		t.Errorf("forced write not applied: %x", got)
	}
	// Raw binary keys (not hex) are read as they are.
	raw := []byte{0xff, 0x00, 0x10, 'z'}
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := readKeyFile(p); !bytes.Equal(got, raw) {
		t.Errorf("raw key = %x, want %x", got, raw)
	}
	if err := os.WriteFile(p, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readKeyFile(p); err == nil {
		t.Error("empty key file accepted")
	}
}

func TestCell(t *testing.T) {
	for in, want := range map[any]string{"": "-", "a\tb\nc": `a\tb\nc`, uint64(7): "7", time.Time{}: "-"} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteSecretFileForceTightensMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSecretFile(p, "s3cret", false); err == nil {
		t.Fatal("existing token file overwritten without force")
	}
	if err := writeSecretFile(p, "s3cret", true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after forced write = %#o, want 0600", fi.Mode().Perm())
	}
	if got, _ := os.ReadFile(p); string(got) != "s3cret\n" {
		t.Errorf("content = %q", got)
	}
}
