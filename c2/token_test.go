package c2_test

import (
	"context"
	"errors"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// A token name is never reused: once revoked, creating a token of that
// name fails, so "token:<name>" in the audit names one token. The last
// live admin token cannot be revoked; with another admin it can.
func TestTokenNamesAndLastAdmin(t *testing.T) {
	e := newEnv(t, core.SymKey)
	ctx := context.Background()
	if _, _, err := e.svc.CreateToken(ctx, sys, "root", domain.TokenAdmin); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateToken(ctx, sys, "ci", domain.TokenOperator); err != nil {
		t.Fatal(err)
	}
	must(e.svc.RevokeToken(ctx, sys, "ci"))(t)
	for _, role := range []domain.TokenRole{domain.TokenOperator, domain.TokenReader} {
		if _, _, err := e.svc.CreateToken(ctx, sys, "ci", role); !errors.Is(err, domain.ErrTokenNameRevoked) {
			t.Fatalf("reused revoked name: %v", err)
		}
	}
	if _, err := e.svc.RevokeToken(ctx, sys, "root"); !errors.Is(err, domain.ErrLastAdminToken) {
		t.Fatalf("revoked the last admin: %v", err)
	}
	if _, err := e.svc.VerifyToken("x"); !errors.Is(err, domain.ErrUnknownToken) {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateToken(ctx, sys, "root2", domain.TokenAdmin); err != nil {
		t.Fatal(err)
	}
	must(e.svc.RevokeToken(ctx, sys, "root"))(t)
	if _, err := e.svc.RevokeToken(ctx, sys, "root2"); !errors.Is(err, domain.ErrLastAdminToken) {
		t.Fatalf("revoked the last admin: %v", err)
	}
	if _, err := e.svc.Token("root2"); err != nil {
		t.Fatal(err)
	}
}
