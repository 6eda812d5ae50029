package accounts

import (
	"encoding/base32"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	lkmail "github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/storage"
)

func factorEnv(t *testing.T, dsn func(testing.TB) string) *testEnv {
	t.Helper()
	sealer, err := secret.NewSealer([]byte("0123456789abcdef0123456789abcdef"), secret.PurposeTOTP)
	must(t, err)
	return newEnv(t, dsn(t), func(o *Options) { o.FactorSealer = sealer; o.TOTPIssuer = "Latchkey Test" })
}

// codeAt is what an authenticator app shows at t.
func codeAt(t *testing.T, b32 string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(b32, at, totpOpts)
	must(t, err)
	return c
}

// enrolled gives a user a confirmed TOTP factor and returns its secret
// and the recovery codes.
func (e *testEnv) enrolled(t *testing.T, userID string) (string, []string) {
	t.Helper()
	en, err := e.svc.EnrolTOTP(e.ctx, userID, goodPW)
	must(t, err)
	codes, err := e.svc.ConfirmTOTP(e.ctx, userID, en.FactorID, codeAt(t, en.Secret, e.clock.Now()))
	must(t, err)
	// The next code is a fresh step: move the clock past the one used.
	e.clock.Advance(totpPeriod * time.Second)
	return en.Secret, codes
}

func TestTOTPEnrolment(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := factorEnv(t, dsn)
		u := e.user(t, "ada", "ada@example.com", true)

		_, err := e.svc.EnrolTOTP(e.ctx, u.ID, "")
		wantField(t, "no password", err, "current_password")
		_, err = e.svc.EnrolTOTP(e.ctx, u.ID, "wrong password")
		wantField(t, "wrong password", err, "current_password")

		en, err := e.svc.EnrolTOTP(e.ctx, u.ID, goodPW)
		must(t, err)
		uri, err := url.Parse(en.OTPAuthURI)
		must(t, err)
		q := uri.Query()
		if uri.Scheme != "otpauth" || uri.Host != "totp" || q.Get("secret") != en.Secret || q.Get("issuer") != "Latchkey Test" ||
			q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
			t.Fatalf("otpauth URI %s", en.OTPAuthURI)
		}
		// The secret is sealed at rest.
		f, err := e.st.GetFactor(e.ctx, u.ID, en.FactorID)
		must(t, err)
		raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
		if len(f.Secret) < len(raw) || string(f.Secret) == string(raw) || string(f.Secret) == en.Secret {
			t.Fatal("the TOTP secret is stored in the clear")
		}
		if on, _ := e.svc.MFAEnabled(e.ctx, u.ID); on {
			t.Fatal("an unconfirmed enrolment turned MFA on")
		}
		_, err = e.svc.ConfirmTOTP(e.ctx, u.ID, en.FactorID, "000000")
		wantField(t, "wrong code", err, "code")
		codes, err := e.svc.ConfirmTOTP(e.ctx, u.ID, en.FactorID, codeAt(t, en.Secret, e.clock.Now()))
		must(t, err)
		if len(codes) != recoveryCodeCount {
			t.Fatalf("%d recovery codes, want %d", len(codes), recoveryCodeCount)
		}
		if on, _ := e.svc.MFAEnabled(e.ctx, u.ID); !on {
			t.Fatal("MFA is off after confirming")
		}
		e.mail.only(t, lkmail.KindFactorAdded, "ada@example.com")
		// A second factor comes without new codes.
		e.clock.Advance(time.Minute)
		en2, err := e.svc.EnrolTOTP(e.ctx, u.ID, goodPW)
		must(t, err)
		codes2, err := e.svc.ConfirmTOTP(e.ctx, u.ID, en2.FactorID, codeAt(t, en2.Secret, e.clock.Now()))
		must(t, err)
		if codes2 != nil {
			t.Fatalf("second factor returned recovery codes %v", codes2)
		}
		fs, left, err := e.svc.ListFactors(e.ctx, u.ID)
		must(t, err)
		if len(fs) != 2 || left != recoveryCodeCount {
			t.Fatalf("ListFactors = %d factors, %d codes", len(fs), left)
		}
	})
}

func TestVerifySecondFactor(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := factorEnv(t, dsn)
		u := e.user(t, "ada", "ada@example.com", true)
		sec, codes := e.enrolled(t, u.ID)
		now := e.clock.Now()
		for _, tc := range []struct {
			name string
			code func() string
			ok   bool
		}{
			{"current step", func() string { return codeAt(t, sec, now) }, true},
			{"same code again (replay)", func() string { return codeAt(t, sec, now) }, false},
			{"one step later (skew)", func() string { return codeAt(t, sec, now.Add(totpPeriod*time.Second)) }, true},
			{"one step earlier than the last used", func() string { return codeAt(t, sec, now) }, false},
			{"two steps ahead", func() string { return codeAt(t, sec, now.Add(3*totpPeriod*time.Second)) }, false},
			{"with spaces, a minute on", func() string {
				e.clock.Advance(2 * totpPeriod * time.Second)
				c := codeAt(t, sec, e.clock.Now())
				return c[:3] + " " + c[3:]
			}, true},
			{"recovery code", func() string { return codes[0] }, true},
			{"recovery code twice", func() string { return codes[0] }, false},
			{"recovery code, other case, no dash", func() string { return strings.ToUpper(codes[1][:5] + codes[1][6:]) }, true},
			{"garbage", func() string { return "not a code" }, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				amr, err := e.svc.VerifySecondFactor(e.ctx, u.ID, tc.code())
				if tc.ok && (err != nil || amr != "otp") {
					t.Fatalf("= %q, %v; want otp", amr, err)
				}
				if !tc.ok && !errors.Is(err, ErrInvalidCode) {
					t.Fatalf("= %q, %v; want ErrInvalidCode", amr, err)
				}
			})
		}
		if len(e.mail.of(lkmail.KindRecoveryCodeUsed)) != 2 {
			t.Errorf("recovery-code emails: %d, want 2", len(e.mail.of(lkmail.KindRecoveryCodeUsed)))
		}
		if _, left, _ := e.svc.ListFactors(e.ctx, u.ID); left != recoveryCodeCount-2 {
			t.Errorf("recovery codes left = %d", left)
		}

		// Wrong codes lock the account like wrong passwords (threshold 3;
		// every success above cleared the count, "garbage" was one).
		for range 2 {
			_, err := e.svc.VerifySecondFactor(e.ctx, u.ID, "000000")
			wantIs(t, "wrong code", err, ErrInvalidCode)
		}
		_, err := e.svc.VerifySecondFactor(e.ctx, u.ID, codeAt(t, sec, e.clock.Now().Add(10*totpPeriod*time.Second)))
		var locked *LockedError
		if !errors.As(err, &locked) {
			t.Fatalf("after 3 wrong codes: %v, want a lock", err)
		}
		if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); !errors.As(err, &locked) {
			t.Fatalf("the password is not locked too: %v", err)
		}
	})
}

func TestFactorRemovalAndReset(t *testing.T) {
	e := factorEnv(t, testdb.SQLite)
	u := e.user(t, "ada", "ada@example.com", true)
	sec, codes := e.enrolled(t, u.ID)
	fs, _, _ := e.svc.ListFactors(e.ctx, u.ID)

	err := e.svc.DeleteFactor(e.ctx, u.ID, fs[0].ID, FactorProof{})
	wantField(t, "no proof", err, "current_password")
	err = e.svc.DeleteFactor(e.ctx, u.ID, fs[0].ID, FactorProof{CurrentPassword: "nope"})
	wantField(t, "wrong password", err, "current_password")

	fresh, err := e.svc.RegenerateRecoveryCodes(e.ctx, u.ID, FactorProof{Code: codeAt(t, sec, e.clock.Now())})
	must(t, err)
	if _, err := e.svc.VerifySecondFactor(e.ctx, u.ID, codes[2]); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("an old recovery code still works after regenerating: %v", err)
	}
	if _, err := e.svc.VerifySecondFactor(e.ctx, u.ID, fresh[0]); err != nil {
		t.Fatalf("a new recovery code: %v", err)
	}
	must(t, e.svc.DeleteFactor(e.ctx, u.ID, fs[0].ID, FactorProof{CurrentPassword: goodPW}))
	if on, _ := e.svc.MFAEnabled(e.ctx, u.ID); on {
		t.Fatal("MFA on after removing the only factor")
	}
	if _, left, _ := e.svc.ListFactors(e.ctx, u.ID); left != 0 {
		t.Fatalf("recovery codes outlived the last factor: %d", left)
	}

	e.enrolled(t, u.ID)
	_, sess, err := e.svc.StartSession(e.ctx, u, SessionMeta{AMR: []string{"pwd", "otp", "mfa"}})
	must(t, err)
	n, err := e.svc.ResetFactors(e.ctx, u.ID, "lost phone")
	must(t, err)
	if n != 1 {
		t.Fatalf("ResetFactors = %d, want 1", n)
	}
	if _, err := e.st.GetBrowserSessionByID(e.ctx, sess.ID); err == nil {
		t.Fatal("a session survived the reset")
	}
	events, err := e.svc.ListAudit(e.ctx, storage.AuditQuery{TargetID: u.ID})
	must(t, err)
	var actions []string
	for _, ev := range events {
		actions = append(actions, ev.Action)
	}
	for _, want := range []string{AuditFactorAdd, AuditFactorRemove, AuditRecoveryCodes, AuditRecoveryCodeUse, AuditFactorsReset} {
		found := false
		for _, a := range actions {
			found = found || a == want
		}
		if !found {
			t.Errorf("no %s in the audit log: %v", want, actions)
		}
	}
}
