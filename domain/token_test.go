package domain_test

import (
	"errors"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

func TestDecideTokenPolicy(t *testing.T) {
	revoked := domain.State{Mode: core.SymKey, Token: domain.TokenView{Name: "ci", Version: 2, Revoked: true}}
	if _, err := domain.Decide(revoked, domain.CreateToken{Name: "ci", Role: domain.TokenReader, Hash: [32]byte{1}}); !errors.Is(err, domain.ErrTokenNameRevoked) {
		t.Fatalf("revoked name reused: %v", err)
	}
	last := domain.State{Mode: core.SymKey, Token: domain.TokenView{Name: "root", Exists: true, Version: 1, Role: domain.TokenAdmin, Admins: 1}}
	if _, err := domain.Decide(last, domain.RevokeToken{Name: "root"}); !errors.Is(err, domain.ErrLastAdminToken) {
		t.Fatalf("last admin revoked: %v", err)
	}
	last.Token.Admins = 2
	if _, err := domain.Decide(last, domain.RevokeToken{Name: "root"}); err != nil {
		t.Fatalf("one of two admins: %v", err)
	}
	op := domain.State{Mode: core.SymKey, Token: domain.TokenView{Name: "ci", Exists: true, Version: 1, Role: domain.TokenOperator, Admins: 0}}
	if _, err := domain.Decide(op, domain.RevokeToken{Name: "ci"}); err != nil {
		t.Fatalf("operator token: %v", err)
	}
}
