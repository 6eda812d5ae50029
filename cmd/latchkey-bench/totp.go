package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// The authcode-totp scenario: the authorization-code flow of authcode
// with a TOTP code after the password. Latchkey accepts each time step
// of an account once (replay protection), with one step of skew, so one
// account signs in here at most twice in its first 30 s (this step and
// the next) and once per 30 s after: the scenario makes -mfa-users accounts (admin import),
// enrols each through the account API, and hands out accounts whose next
// step is still acceptable.

const totpPeriod = 30

type totpAccounts struct {
	mu     sync.Mutex
	names  []string
	secret map[string]string
	last   map[string]int64 // last step used
	next   int
	code   map[string]string // reserved code of an account's sign-in in flight
}

// pick reserves the next account with an acceptable step and its code,
// waiting for the next step when every account is used up.
func (t *totpAccounts) pick(ctx context.Context) (string, error) {
	for {
		t.mu.Lock()
		for range t.names {
			name := t.names[t.next%len(t.names)]
			t.next++
			ok, err := t.reserveLocked(name)
			if err != nil || ok {
				t.mu.Unlock()
				return name, err
			}
		}
		t.mu.Unlock()
		// Every account has used its steps: wait for the next one (this
		// caps the rate at about accounts/30 s; raise -mfa-users).
		now := time.Now().Unix() / totpPeriod
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Until(time.Unix((now+1)*totpPeriod, 0))):
		}
	}
}

// reserveLocked takes the next acceptable step of one account (false
// when it has none left in the window). Steps are the current one and
// the next: a sign-in takes a second or more under load, and a code of
// the previous step could be two steps old when it arrives.
func (t *totpAccounts) reserveLocked(name string) (bool, error) {
	now := time.Now().Unix() / totpPeriod
	step := max(t.last[name]+1, now)
	if step > now+1 {
		return false, nil
	}
	c, err := totp.GenerateCodeCustom(t.secret[name], time.Unix(step*totpPeriod, 0),
		totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return false, err
	}
	t.last[name], t.code[name] = step, c
	return true, nil
}

func (t *totpAccounts) codeFor(user string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.code[user]
	if !ok {
		return "", fmt.Errorf("no code reserved for %s", user)
	}
	return c, nil
}

// setupTOTP makes the accounts and enrols them.
func setupTOTP(ctx context.Context, cfg *config, hc *http.Client, ep endpoints, a *authCode) (*totpAccounts, error) {
	admin, err := clientCredentials(ctx, hc, ep.Token, cfg.clientID, cfg.clientSecret, "admin")
	if err != nil {
		return nil, fmt.Errorf("admin token (-client-id/-client-secret of an --admin client): %w", err)
	}
	prefix := fmt.Sprintf("mfa%d-", time.Now().UnixNano()%1e6)
	var lines bytes.Buffer
	acc := &totpAccounts{secret: map[string]string{}, last: map[string]int64{}, code: map[string]string{}}
	for i := range cfg.mfaUsers {
		name := fmt.Sprintf("%s%d", prefix, i)
		acc.names = append(acc.names, name)
		b, _ := json.Marshal(map[string]any{"username": name, "email": name + "@example.com", "email_verified": true,
			"password": cfg.password})
		lines.Write(append(b, '\n'))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.adminURL, "/")+"/v1/users:import", &lines)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/jsonl")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("importing the accounts: %w", err)
	}
	var imp struct {
		Imported int `json:"imported"`
		Failed   int `json:"failed"`
	}
	err = json.NewDecoder(resp.Body).Decode(&imp)
	drain(resp)
	if err != nil || resp.StatusCode != http.StatusOK || imp.Failed > 0 {
		return nil, fmt.Errorf("importing the accounts: HTTP %d, %d failed (%v)", resp.StatusCode, imp.Failed, err)
	}

	// Enrol every account (password sign-in with account:write, then the
	// account API), a few at a time.
	a.scope = "openid account:write"
	work := make(chan string)
	errs := make(chan error, cfg.concurrency)
	var wg sync.WaitGroup
	for range min(cfg.concurrency, 8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				if err := enrolTOTP(ctx, hc, cfg, a, acc, name); err != nil {
					select {
					case errs <- fmt.Errorf("enrolling %s: %w", name, err):
					default:
					}
				}
			}
		}()
	}
	for _, name := range acc.names {
		work <- name
	}
	close(work)
	wg.Wait()
	a.scope = ""
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return acc, nil
}

func enrolTOTP(ctx context.Context, hc *http.Client, cfg *config, a *authCode, acc *totpAccounts, name string) error {
	tr, err := a.signInAs(ctx, name)
	if err != nil {
		return err
	}
	call := func(path string, body, out any) error {
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.issuer+path, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode/100 != 2 {
			return httpError(resp)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var en struct{ ID, Secret string }
	if err := call("/account/me/factors/totp", map[string]string{"current_password": cfg.password}, &en); err != nil {
		return err
	}
	if en.Secret == "" {
		return errors.New("no secret in the enrolment")
	}
	acc.mu.Lock()
	acc.secret[name] = en.Secret
	ok, err := acc.reserveLocked(name)
	code := acc.code[name]
	acc.mu.Unlock()
	if err != nil || !ok {
		return fmt.Errorf("no step for the confirmation code: %v", err)
	}
	var out map[string]any
	return call("/account/me/factors/totp/"+en.ID+"/confirm", map[string]string{"code": code}, &out)
}
