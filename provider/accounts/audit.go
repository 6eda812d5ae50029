package accounts

import (
	"context"
	"fmt"

	"github.com/latchkey/latchkey/storage"
)

// Actor is who performs an action: a person (for their own account), an
// admin API client, or the system. Handlers put it in the context with
// WithActor; every audited change reads it from there.
type Actor struct {
	Type      string // storage.ActorUser, ActorClient or ActorSystem
	ID        string
	IP        string
	UserAgent string
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx; without one it is the system.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.Type != "" {
		return a
	}
	return Actor{Type: storage.ActorSystem, ID: "latchkey"}
}

// String is the actor as the archive records it ("client:c_123").
func (a Actor) String() string { return a.Type + ":" + a.ID }

// audit records an event for the actor in ctx. Call it inside the
// transaction of the change, so that the change and its record commit or
// fail together.
func (s *Service) audit(ctx context.Context, action, target, reason string, changes map[string]any) error {
	a := ActorFrom(ctx)
	if a.Type == storage.ActorUser && a.ID == "" {
		a.ID = target // a person acting before they had an id (registration)
	}
	if err := s.store.AppendAudit(ctx, &storage.AuditEvent{
		Time: s.now().UTC(), ActorType: a.Type, ActorID: a.ID, Action: action, TargetID: target,
		IP: a.IP, UserAgent: truncate(a.UserAgent, 512), Reason: reason, Changes: changes,
	}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// Audited actions. The list is the vocabulary of the audit log's action
// filter.
const (
	AuditUserCreate        = "user.create"
	AuditUserRegister      = "user.register"
	AuditUserUpdate        = "user.update"
	AuditUserEmailVerify   = "user.email.verify"
	AuditUserEmailChange   = "user.email.change"
	AuditUserPasswordSet   = "user.password.set"
	AuditUserPasswordReset = "user.password.reset"
	AuditUserPasswordChg   = "user.password.change"
	AuditUserSuspend       = "user.suspend"
	AuditUserUnsuspend     = "user.unsuspend"
	AuditUserDelete        = "user.delete"
	AuditUserRestore       = "user.restore"
	AuditUserHardDelete    = "user.hard_delete"
	AuditUserLock          = "user.lockout"
	AuditUserUnlock        = "user.lockout.clear"
	AuditUserTier          = "user.tier"
	AuditUserImport        = "user.import"
	AuditSessionRevoke     = "user.session.revoke"
	AuditSessionsRevoke    = "user.sessions.revoke"
	AuditConsentRevoke     = "user.consent.revoke"
	AuditFactorAdd         = "user.factor.add"
	AuditFactorRemove      = "user.factor.remove"
	AuditFactorsReset      = "user.factors.reset"
	AuditRecoveryCodes     = "user.recovery_codes.regenerate"
	AuditRecoveryCodeUse   = "user.recovery_code.use"
	AuditTierCreate        = "tier.create"
	AuditTierUpdate        = "tier.update"
	AuditTierDelete        = "tier.delete"
	AuditTierLimits        = "tier.rate_limits"
	AuditClientCreate      = "client.create"
	AuditClientUpdate      = "client.update"
	AuditClientDelete      = "client.delete"
	AuditClientSecret      = "client.secret.rotate"
	AuditKeyRotate         = "key.rotate" // = keys.AuditRotate, recorded by keys.Manager.RotateAudited
	AuditKeyRetire         = "key.retire" // = keys.AuditRetire, recorded by keys.Manager.RetireAudited
)

// securityEvent logs, at warn, something an operator watching the logs for
// attacks or abuse wants to see (a lockout, a suspension, a deletion):
// what, to whom, by whom, from where. Never a credential.
func (s *Service) securityEvent(ctx context.Context, event, target string, attrs ...any) {
	a := ActorFrom(ctx)
	s.log.WarnContext(ctx, "security event", append([]any{"event", event, "target", target,
		"actor", a.String(), "ip", a.IP}, attrs...)...)
}
