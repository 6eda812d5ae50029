package keys

import (
	"context"
	"fmt"

	"github.com/latchkey/latchkey/storage"
)

// Auditor writes the audit log in the caller's transaction. It is what
// the audited operations below need from provider/accounts, declared here
// so that neither package imports the other; *accounts.Service satisfies
// it and records the actor carried in the context.
type Auditor interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	RecordAudit(ctx context.Context, action, target, reason string, changes map[string]any) error
}

// The audit actions of key changes: accounts.AuditKeyRotate and
// accounts.AuditKeyRetire in the audit log's vocabulary.
const (
	AuditRotate = "key.rotate"
	AuditRetire = "key.retire"
)

// RotateAudited is the rotation an operator asks for, from the CLI or the
// admin API: Rotate (RotateNow when immediate) and, in the same
// transaction, one AuditRotate event per new key with its algorithm,
// activates_at and immediate. Nothing is kept when either fails.
func (m *Manager) RotateAudited(ctx context.Context, a Auditor, immediate bool) ([]storage.SigningKey, error) {
	rotate := m.Rotate
	if immediate {
		rotate = m.RotateNow
	}
	var created []storage.SigningKey
	err := a.InTx(ctx, func(ctx context.Context) error {
		var err error
		if created, err = rotate(ctx); err != nil {
			return err
		}
		for _, k := range created {
			if err := a.RecordAudit(ctx, AuditRotate, k.ID, "", map[string]any{
				"algorithm": k.Algorithm, "activates_at": k.ActivatesAt.UTC(), "immediate": immediate,
			}); err != nil {
				return fmt.Errorf("recording key rotation: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		m.reloadAfterRollback(ctx, "rotation")
		return nil, err
	}
	return created, nil
}

// RetireAudited is the retirement an operator asks for: Retire and, in the
// same transaction, an AuditRetire event with the key's algorithm and
// previous_state. Retiring a key that no longer signs (retiring, expired)
// changes nothing and records nothing; a refused retirement (ErrLastKey,
// an unknown kid) writes nothing.
func (m *Manager) RetireAudited(ctx context.Context, a Auditor, kid string) error {
	err := a.InTx(ctx, func(ctx context.Context) error {
		before, err := m.retire(ctx, kid)
		if err != nil {
			return err
		}
		if before.State == StateRetiring || before.State == StateExpired {
			return nil
		}
		if err := a.RecordAudit(ctx, AuditRetire, kid, "",
			map[string]any{"algorithm": before.Algorithm, "previous_state": before.State}); err != nil {
			return fmt.Errorf("recording key retirement: %w", err)
		}
		return nil
	})
	if err != nil {
		m.reloadAfterRollback(ctx, "retirement")
	}
	return err
}

// reloadAfterRollback reloads the keys after a failed audited change: the
// change reloaded, inside its transaction, rows that were rolled back.
func (m *Manager) reloadAfterRollback(ctx context.Context, what string) {
	if err := m.Refresh(context.WithoutCancel(ctx)); err != nil {
		m.log.Error("reloading signing keys after a failed "+what, "err", err)
	}
}
