package provider

import (
	"slices"
	"time"
)

// The sign-in pipeline. A pending authorization (or a direct sign-in to
// the account page) moves through these steps; decide, and nothing else,
// says which one comes next. The endpoints and the front-ends (the login
// pages, the federation callback) only report what a step proved and ask
// where to go: no front-end finishes a sign-in itself.
//
//	login → second factor (when required) → enrolment (when required
//	but the person has no factor) → consent (when needed) → finish
//
// The browser session is created at finish, when every required step is
// done, so a request abandoned half-way (at the second factor, at the
// consent page) leaves no session that looks like a finished sign-in.

// Step is what a pending sign-in needs next.
type Step int

const (
	StepLogin        Step = iota // identify and prove a first factor
	StepSecondFactor             // a TOTP code, recovery code or passkey
	StepEnrol                    // a second factor is required and the person has none: set one up
	StepConsent                  // the person approves the scopes
	StepFinish                   // start the session and answer the client
)

var stepNames = [...]string{"login", "second_factor", "enrol", "consent", "finish"}

func (s Step) String() string { return stepNames[s] }

// signInState is everything decide looks at. It is built from the
// pending authorization (or the browser's session on the fast path) and
// the policy; building it is the caller's business, deciding is not.
type signInState struct {
	// SignedIn: a first factor has been proven for this request (by a
	// page of this flow or by the browser's existing session).
	SignedIn bool
	// AMR is what has been proven so far (RFC 8176 values).
	AMR []string
	// FreshLogin: the first factor was proven in this flow, not taken
	// from an existing session. A person with a factor enrolled must use
	// it at every fresh sign-in; an existing session keeps what it was
	// (unless the policy asks for more: PolicyMFA).
	FreshLogin bool
	// HasFactor: the person has a confirmed second factor.
	HasFactor bool
	// PolicyMFA: the client, the person's tier or the request
	// (acr_values) requires two factors.
	PolicyMFA bool
	// ConsentNeeded: the requested scopes are not all granted yet (or
	// prompt=consent); ConsentDone: the person answered the consent page
	// in this flow. A direct sign-in (no client) needs no consent.
	ConsentNeeded bool
	ConsentDone   bool
}

// decide is the pipeline's one rule.
func decide(s signInState) Step {
	if !s.SignedIn {
		return StepLogin
	}
	if !multiFactor(s.AMR) && (s.PolicyMFA || (s.FreshLogin && s.HasFactor)) {
		if s.HasFactor {
			return StepSecondFactor
		}
		return StepEnrol
	}
	if s.ConsentNeeded && !s.ConsentDone {
		return StepConsent
	}
	return StepFinish
}

// Authentication method references (RFC 8176) Latchkey records.
const (
	AMRPassword  = "pwd"
	AMROTP       = "otp" // a TOTP or recovery code
	AMRHardware  = "hwk" // a passkey bound to a device
	AMRSoftware  = "swk" // a synced passkey
	AMRFederated = "fed"
	AMRMulti     = "mfa"
)

// multiFactor reports whether amr proves two factors: a password or an
// upstream sign-in plus a one-time code or a passkey. A passwordless
// passkey sign-in with user verification (something the person has, and
// is or knows) arrives as [hwk|swk, mfa] from provider/accounts.
func multiFactor(amr []string) bool {
	if slices.Contains(amr, AMRMulti) {
		return true
	}
	first := slices.Contains(amr, AMRPassword) || slices.Contains(amr, AMRFederated)
	second := slices.Contains(amr, AMROTP) || slices.Contains(amr, AMRHardware) || slices.Contains(amr, AMRSoftware)
	return first && second
}

// combineAMR adds what a step proved to what was proven before, in a
// stable order, with "mfa" when the result is two factors.
func combineAMR(before []string, added ...string) []string {
	out := slices.Clone(before)
	for _, a := range added {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	// "mfa" goes last, whether a step asserted it (a passwordless
	// passkey) or the combination earns it.
	multi := multiFactor(out)
	out = slices.DeleteFunc(out, func(a string) bool { return a == AMRMulti })
	if multi {
		out = append(out, AMRMulti)
	}
	return out
}

// ACRMFA is the authentication context class of a sign-in with two
// factors; a client asks for it with acr_values (step-up).
const ACRMFA = "urn:latchkey:acr:mfa"

// maxAgeExceeded reports whether a session signed in at authTime is
// older than max_age seconds allow (a negative max_age allows anything).
func maxAgeExceeded(maxAge int, authTime, now time.Time) bool {
	return maxAge >= 0 && authTime.Add(time.Duration(maxAge)*time.Second).Before(now)
}
