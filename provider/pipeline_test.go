package provider

import (
	"slices"
	"testing"

	"github.com/ory/fosite"
)

func TestDecide(t *testing.T) {
	pwd := []string{AMRPassword}
	both := []string{AMRPassword, AMROTP, AMRMulti}
	for _, tc := range []struct {
		name string
		st   signInState
		want Step
	}{
		{"nobody signed in", signInState{}, StepLogin},
		{"nobody, even with a policy", signInState{PolicyMFA: true, ConsentNeeded: true}, StepLogin},
		{"password, nothing else needed", signInState{SignedIn: true, AMR: pwd, FreshLogin: true}, StepFinish},
		{"password, factor enrolled: asked for it", signInState{SignedIn: true, AMR: pwd, FreshLogin: true, HasFactor: true}, StepSecondFactor},
		{"federated, factor enrolled: asked for it", signInState{SignedIn: true, AMR: []string{AMRFederated}, FreshLogin: true, HasFactor: true}, StepSecondFactor},
		{"existing password session, factor enrolled later: kept", signInState{SignedIn: true, AMR: pwd, HasFactor: true}, StepFinish},
		{"step-up on an existing session", signInState{SignedIn: true, AMR: pwd, HasFactor: true, PolicyMFA: true}, StepSecondFactor},
		{"policy, no factor: enrol", signInState{SignedIn: true, AMR: pwd, FreshLogin: true, PolicyMFA: true}, StepEnrol},
		{"policy met by the session", signInState{SignedIn: true, AMR: both, PolicyMFA: true, HasFactor: true}, StepFinish},
		{"passkey with user verification counts as both", signInState{SignedIn: true, AMR: []string{AMRHardware, AMRMulti}, FreshLogin: true, HasFactor: true, PolicyMFA: true}, StepFinish},
		{"second factor before consent", signInState{SignedIn: true, AMR: pwd, FreshLogin: true, HasFactor: true, ConsentNeeded: true}, StepSecondFactor},
		{"consent after both factors", signInState{SignedIn: true, AMR: both, FreshLogin: true, HasFactor: true, ConsentNeeded: true}, StepConsent},
		{"consent given", signInState{SignedIn: true, AMR: pwd, ConsentNeeded: true, ConsentDone: true}, StepFinish},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.st); got != tc.want {
				t.Errorf("decide(%+v) = %s, want %s", tc.st, got, tc.want)
			}
		})
	}
}

func TestCombineAMRAndACR(t *testing.T) {
	for _, tc := range []struct {
		before, added []string
		want          []string
		acr           string
	}{
		{nil, []string{"pwd"}, []string{"pwd"}, ACRPassword},
		{[]string{"pwd"}, []string{"otp"}, []string{"pwd", "otp", "mfa"}, ACRMFA},
		{[]string{"fed"}, []string{"otp"}, []string{"fed", "otp", "mfa"}, ACRMFA},
		{[]string{"pwd", "otp", "mfa"}, []string{"otp"}, []string{"pwd", "otp", "mfa"}, ACRMFA},
		{[]string{"fed"}, nil, []string{"fed"}, ACRFederated},
		{[]string{"pwd"}, []string{"hwk"}, []string{"pwd", "hwk", "mfa"}, ACRMFA},
		{nil, []string{"swk", "mfa"}, []string{"swk", "mfa"}, ACRMFA},
	} {
		got := combineAMR(tc.before, tc.added...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("combineAMR(%v, %v) = %v, want %v", tc.before, tc.added, got, tc.want)
		}
		if acr := acrFor(got); acr != tc.acr {
			t.Errorf("acrFor(%v) = %s, want %s", got, acr, tc.acr)
		}
	}
}

func TestPromptNoneError(t *testing.T) {
	for step, want := range map[Step]string{StepLogin: "login_required", StepConsent: "consent_required",
		StepSecondFactor: "interaction_required", StepEnrol: "interaction_required"} {
		if got := fosite.ErrorToRFC6749Error(promptNoneError(step)).ErrorField; got != want {
			t.Errorf("%s: %s, want %s", step, got, want)
		}
	}
}
